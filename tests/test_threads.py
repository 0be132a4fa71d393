"""The thread policy (grpo_edu.threads): never more than one thread unless it is measured faster
on idle cores; explicit choices win. No timing here: the measurement is replaced by stubs."""

from __future__ import annotations

import pytest

from grpo_edu import threads


@pytest.fixture
def machine(monkeypatch):
    """Set (cores, load average, measured seconds per thread count); the probe is a stub."""
    calls = []

    def set_(cores, load, seconds=None):
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(threads.os, "cpu_count", lambda: cores)
        monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
        monkeypatch.setattr(threads, "measure", lambda *a, **k: calls.append(1) or seconds)
        return calls

    return set_


def test_explicit_counts_are_kept_and_bad_ones_refused():
    assert threads.choose_threads(1) == 1 and threads.choose_threads(3) == 3
    for bad in (0, -1, 1.5, "two", True):
        with pytest.raises(ValueError, match="threads must be a positive int or 'auto'"):
            threads.choose_threads(bad)


def test_auto_takes_omp_num_threads_when_set(machine, monkeypatch):
    calls = machine(cores=8, load=0.0, seconds={1: 1.0, 2: 0.1})
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose_threads("auto") == 1 and not calls


@pytest.mark.parametrize("cores, load", [(1, 0.0), (2, 0.6), (2, 7.5), (4, 2.6)])
def test_auto_is_one_thread_on_a_busy_or_single_core_machine(machine, cores, load):
    calls = machine(cores, load, seconds={1: 1.0, 2: 0.1})
    assert threads.choose_threads("auto") == 1
    assert not calls  # not even measured


@pytest.mark.parametrize("two, expected", [(0.5, 2), (0.89, 2), (0.95, 1), (1.3, 1)])
def test_auto_uses_idle_cores_only_when_measured_faster(machine, two, expected):
    calls = machine(cores=2, load=0.1, seconds={1: 1.0, 2: two})
    assert threads.choose_threads("auto") == expected and calls == [1]


def test_measure_interleaves_and_restores_the_thread_count():
    import torch

    before = torch.get_num_threads()
    seconds = threads.measure((1,), rounds=1)
    assert set(seconds) == {1} and seconds[1] > 0
    assert torch.get_num_threads() == before


def test_the_probe_samples_before_it_trains(monkeypatch):
    """auto's probe times what a step is made of: sampling, then a forward and backward (the
    forward and backward alone chose two threads where a whole step was slower with two)."""
    from grpo_edu import rollout

    calls = []
    real = rollout.sample

    def counting(*args, **kwargs):
        calls.append(args[3])  # max_new_tokens
        return real(*args, **kwargs)

    monkeypatch.setattr(rollout, "sample", counting)
    times = threads.measure((1,), rounds=1)
    assert calls == [6, 6] and times[1] > 0  # warm-up and the timed round
