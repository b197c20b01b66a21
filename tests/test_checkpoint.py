"""Per-epoch checkpoints: what was saved comes back into the same objects; nothing saved -> epoch 0."""

from __future__ import annotations

import torch

from nasoa_lib.checkpoint import load_checkpoint, restore, resume, save_checkpoint
from nasoa_lib.store import ArtifactStore


def test_resume_restores_every_named_object_and_the_history(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    assert resume(store, "run", "k", net=net, opt=opt) == (0, [])
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    save_checkpoint(store, "run", "k", 2, [{"epoch": 1}, {"epoch": 2}], net=net, opt=opt, extra=None)

    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    assert resume(store, "run", "k", net=fresh, opt=fresh_opt, extra=None) == (2, [{"epoch": 1}, {"epoch": 2}])
    assert torch.equal(fresh.weight, net.weight)
    momentum = fresh_opt.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(momentum, opt.state_dict()["state"][0]["momentum_buffer"])
    assert load_checkpoint(store, "run", "k")["extra"] is None
    assert load_checkpoint(store, "run", "other") is None


def test_restore_skips_objects_saved_as_none():
    net = torch.nn.Linear(2, 2)
    before = net.weight.clone()
    assert restore({"net": None, "epoch": 3, "history": []}, net=net) == (3, [])
    assert torch.equal(net.weight, before)
