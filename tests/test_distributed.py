"""Data parallelism (tl_utils.distributed, fit under torchrun): two processes with gloo on the
CPU train to the same weights as one process with the two processes' batches together, and as
gradient accumulation; a run that does not average gradients does not (the check can fail)."""

import json
from pathlib import Path

import distributed_worker as worker
import pytest
import torch

import tl_utils as tl
from tl_utils import distributed, train

# Float tolerance: the processes' gradients are summed in another order than one process's (SGD:
# the rounding is not magnified, see distributed_worker.run).
ATOL, RTOL = 1e-5, 1e-4


def _launch(out: Path, mode: str = "") -> None:
    distributed.launch(Path(worker.__file__), out, mode, processes=2)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    _launch(out)
    return out


def _same_weights(a: dict, b: dict) -> bool:
    return all(torch.allclose(a[k].float(), b[k].float(), atol=ATOL, rtol=RTOL) for k in a)


def _reference(batch_size: int, accumulate: int = 1) -> dict:
    model = worker.small_model()
    worker.run(model, batch_size, accumulate)
    return model.state_dict()


@pytest.mark.slow
def test_two_processes_equal_one_process_with_both_batches(two_processes):
    both = torch.load(two_processes / "weights.pt", weights_only=True)
    assert _same_weights(both, _reference(2 * worker.BATCH))
    assert not _same_weights(both, _reference(worker.BATCH))  # the check tells batch sizes apart


@pytest.mark.slow
def test_gradient_accumulation_equals_the_big_batch_too():
    assert _same_weights(_reference(worker.BATCH, accumulate=2), _reference(2 * worker.BATCH))


@pytest.mark.slow
def test_without_averaged_gradients_the_weights_differ(tmp_path):
    _launch(tmp_path, "no-averaging")
    alone = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert not _same_weights(alone, _reference(2 * worker.BATCH))


@pytest.mark.slow
def test_every_process_reports_the_same_history_and_reads_the_features_process_0_cached(two_processes):
    ranks = [json.loads((two_processes / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert not ranks[0]["features_cached"] and ranks[1]["features_cached"]
    strip = [[{k: v for k, v in row.items() if k != "seconds"} for row in r["history"]] for r in ranks]
    assert strip[0] == strip[1]
    assert (two_processes / "writers.txt").read_text().split() == ["0"] * worker.EPOCHS  # process 0 only


@pytest.mark.slow
def test_a_checkpoint_from_two_processes_is_not_resumed_by_one(two_processes):
    with pytest.raises(ValueError, match="2 process.*this run has 1: each step would see 1/2 .*nproc_per_node=2"):
        worker.run(worker.small_model(), worker.BATCH, checkpoint_dir=two_processes / "checkpoints")


def test_several_processes_without_a_rendezvous_are_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR, MASTER_PORT, RANK are not set.*torchrun"):
        train.fit(torch.nn.Linear(2, 2), (torch.rand(4, 2), torch.tensor([0, 1, 0, 1])))


def test_more_processes_than_examples_are_refused(monkeypatch):
    monkeypatch.setattr(distributed, "setup", lambda: True)
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    with pytest.raises(ValueError, match="3 examples for 4 processes.*--nproc_per_node=3"):
        train.fit(torch.nn.Linear(2, 2), (torch.rand(3, 2), torch.tensor([0, 1, 0])))


@pytest.mark.parametrize("size, processes", [(8, 2), (5, 2), (7, 3), (1, 2), (3, 4)])
def test_shares_weighted_give_the_whole_batch_mean(size, processes):
    values, batch = torch.rand(size), torch.arange(size)
    shares = [distributed.shard(batch, processes, me) for me in range(processes)]
    real = torch.cat([index for index, weight in shares if weight > 0])
    assert torch.equal(real, batch)  # every example once, in order
    # DistributedDataParallel averages the processes' gradients: so must this, of the weighted means
    averaged = sum(weight * values[index].mean() for index, weight in shares) / processes
    assert torch.isclose(averaged, values.mean())


def test_one_process_needs_no_launcher():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert not distributed.setup()
    assert distributed.all_sum(2.0, 3) == [2.0, 3]
    with distributed.main_first() as first:
        assert first


def test_accumulate_must_be_a_positive_count():
    with pytest.raises(ValueError, match="accumulate must be a positive"):
        train.fit(torch.nn.Linear(2, 2), (torch.rand(4, 2), torch.tensor([0, 1, 0, 1])), accumulate=0)


def test_a_failed_launch_says_why(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("raise SystemExit('no data here')")
    with pytest.raises(RuntimeError, match="(?s)torchrun exited with status.*no data here"):
        distributed.launch(script, processes=1)


def test_processes_without_a_gpu_each_train_on_the_cpu(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # two processes, one GPU (Colab)
    assert tl.get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert tl.get_device() == torch.device("cuda", 1)


def test_the_step_size_check_names_the_usual_slips(monkeypatch, capsys):
    from tl_utils import exercises

    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    exercises.check("A.1", 64)
    assert "Correct" in capsys.readouterr().out
    for slip, hint in [(32, "one forward pass on every process"), (16, "one process's share"), (8, "not the step")]:
        with pytest.raises(exercises.ExerciseError, match=hint):
            exercises.check("A.1", slip)


def test_the_fewer_gpus_check_names_the_usual_slips(monkeypatch, capsys):
    from tl_utils import exercises

    monkeypatch.setenv("TL_STRICT_CLAIMS", "1")
    exercises.check("A.2", 16)
    assert "Correct" in capsys.readouterr().out
    for slip, hint in [(8, "half the examples"), (32, "whole step's batch")]:
        with pytest.raises(exercises.ExerciseError, match=hint):
            exercises.check("A.2", slip)


@pytest.mark.slow
def test_a_finished_two_process_run_is_read_back_by_the_next_launch(tmp_path):
    _launch(tmp_path)
    first = torch.load(tmp_path / "weights.pt", weights_only=True)
    _launch(tmp_path)  # the same script again, as after a disconnect: the checkpoint says it is done
    again = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert (tmp_path / "writers.txt").read_text().split() == ["0"] * worker.EPOCHS  # nothing trained again
