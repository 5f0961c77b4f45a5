"""Teacher weightings (uniform, domain table) and the DDP all-reduce of weight statistics."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kgkd.distill.weighting import DomainTableWeighting, UniformWeighting, all_reduce_mean
from kgkd.errors import DistillError, SignalError


def test_uniform_rows_sum_to_one() -> None:
    w = UniformWeighting(3)(torch.tensor([0, 1, 1, 0]), [torch.zeros(4, 2)] * 3)
    assert w.shape == (4, 3) and torch.allclose(w, torch.full((4, 3), 1 / 3))
    with pytest.raises(
        DistillError, match="UniformWeighting was built for 3 teachers but got 2 teacher outputs"
    ):
        UniformWeighting(3)(torch.tensor([0]), [torch.zeros(1, 2)] * 2)
    with pytest.raises(SignalError, match="need at least one teacher"):
        UniformWeighting(0)


def test_domain_table_picks_rows_by_domain() -> None:
    table = torch.tensor([[0.7, 0.3], [0.1, 0.9], [0.5, 0.5]])
    w = DomainTableWeighting(table)(torch.tensor([2, 0, 1, 0]))
    assert torch.equal(w, table[[2, 0, 1, 0]])
    normalised = DomainTableWeighting(torch.tensor([[2.0, 6.0]]), normalize=True)
    assert normalised.table.tolist() == [[0.25, 0.75]]
    assert "table" in dict(
        normalised.named_buffers()
    )  # moves with .to(device), saved in state_dict


def test_domain_table_validation_names_the_row() -> None:
    names = ["amazon", "imdb"]
    with pytest.raises(SignalError, match=r"row 'imdb' holds NaN/inf"):
        DomainTableWeighting(torch.tensor([[0.5, 0.5], [float("nan"), 1.0]]), names)
    with pytest.raises(SignalError, match=r"row 'amazon' has negative weights"):
        DomainTableWeighting(torch.tensor([[1.5, -0.5], [0.5, 0.5]]), names)
    with pytest.raises(
        SignalError,
        match=r"row 'imdb' sums to 0.8, not 1.*normalise each row \(or pass normalize=True\)",
    ):
        DomainTableWeighting(torch.tensor([[0.5, 0.5], [0.4, 0.4]]), names)
    with pytest.raises(SignalError, match=r"row 'domain 0' sums to 0"):
        DomainTableWeighting(torch.tensor([[0.0, 0.0]]), normalize=True)
    with pytest.raises(SignalError, match=r"must be 2-D \[domains, teachers\], got shape \[2\]"):
        DomainTableWeighting(torch.tensor([0.5, 0.5]))
    with pytest.raises(SignalError, match="has 2 rows but 1 domain names"):
        DomainTableWeighting(torch.tensor([[1.0], [1.0]]), ["amazon"])
    weighting = DomainTableWeighting(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), names)
    with pytest.raises(
        DistillError,
        match=r"domain id 2 has no row in the teacher weight table \(rows 0..1: amazon, imdb\)",
    ):
        weighting(torch.tensor([0, 2]))


def test_all_reduce_mean_is_identity_without_ddp() -> None:
    x = torch.tensor([1.0, 2.0])
    assert all_reduce_mean(x) is x


def _ddp_worker(rank: int, init_file: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        local = torch.tensor([1.0 + rank * 2.0], requires_grad=True)  # rank 0: 1, rank 1: 3
        mean = all_reduce_mean(local)
        mean.backward()
        torch.save({"mean": mean.item(), "grad": local.grad.item()}, f"{results}.{rank}")
    finally:
        dist.destroy_process_group()


def test_all_reduce_mean_agrees_across_two_ranks() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        init_file, results = os.path.join(tmp, "init"), os.path.join(tmp, "res")
        # fork: the children reuse the imported torch (spawn would re-import it, ~10 s on a busy box)
        mp.start_processes(
            _ddp_worker, args=(init_file, results), nprocs=2, join=True, start_method="fork"
        )
        got = [torch.load(f"{results}.{r}", weights_only=True) for r in range(2)]
    assert [g["mean"] for g in got] == [2.0, 2.0]  # every rank sees the global mean
    assert [g["grad"] for g in got] == [1.0, 1.0]  # gradient flows through the local term
