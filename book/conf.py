"""Sphinx configuration of the course website (built by ``python -m grpo_edu book``).

Everything the pages load is served by the site itself: sphinx-book-theme ships its fonts and
icons, MathJax 3 comes from the ``sphinx-mathjax-offline`` package (copied into
``_static/mathjax``), search uses Sphinx's own index, and no ipywidgets JavaScript is loaded
(the explorers are rendered as images by ``grpo_edu.book.explorers``).
"""

from grpo_edu.course import BRANCH, REPOSITORY

project = "grpo_edu: GRPO vs PPO, step by step"
author = "the grpo_edu authors"
copyright = "the grpo_edu authors, MIT license"

extensions = ["myst_nb", "sphinx.ext.mathjax", "sphinx-mathjax-offline"]
exclude_patterns = ["**/.ipynb_checkpoints"]

# -- MyST and notebooks: already executed by grpo_edu.book, never here
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3  # `page.ipynb#key-equations` links work (GitHub-style slugs)
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # the default loads require.js and the widget manager from a CDN
nb_merge_streams = True

# -- HTML
html_theme = "sphinx_book_theme"
html_title = "GRPO vs PPO, step by step"
html_static_path = ["_static"]
html_css_files = ["grpo_edu.css"]
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": f"https://github.com/{REPOSITORY}",
    "repository_branch": BRANCH,
    "path_to_docs": "",
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
# light by default (the figures are drawn on white); without it the theme logs a console error
# on a reader's first visit ("invalid theme mode")
html_context = {"default_mode": "light"}
