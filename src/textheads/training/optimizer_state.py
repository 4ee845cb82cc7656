"""An optimiser's state as tensors (for safetensors) plus JSON, and back, by parameter name.

PyTorch numbers an optimiser's parameters by position. Positions follow the
order of the model's parameters, which follows the order of the heads in the
config; a resumed run whose config lists the heads in another order would
give each parameter another's moments (and the fused AdamW kernel, given
moments of the wrong shape, writes out of bounds). So a checkpoint records
each position's parameter name, and a resume maps the state back by name and
checks every shape.
"""

from __future__ import annotations

from typing import Any

import torch


def parameter_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of each of the optimiser's parameters, in its own numbering."""
    by_id = {id(param): name for name, param in model.named_parameters()}
    return [by_id.get(id(param), f"<unnamed {i}>") for i, param in enumerate(p for group in optimizer.param_groups for p in group["params"])]


def flatten(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors named `state.<position>.<key>`, everything else as JSON-able data)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for position, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{position}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(position), {})[key] = value
    data = {"param_groups": state_dict["param_groups"], "scalars": scalars, "param_names": parameter_names(model, optimizer)}
    return tensors, data


def restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
    """Load a flattened state into `optimizer`; ValueError when it belongs to other parameters."""
    saved: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, position, key = name.split(".", 2)
        saved.setdefault(int(position), {})[key] = value
    for position, values in data["scalars"].items():
        saved.setdefault(int(position), {}).update(values)
    names = parameter_names(model, optimizer)
    saved_names = data.get("param_names") or names  # checkpoints before names were recorded: by position
    if sorted(saved_names) != sorted(names):
        differ = sorted(set(saved_names) ^ set(names))
        raise ValueError(f"the checkpoint's optimiser holds other parameters ({', '.join(differ[:4]) or 'a different number'})")
    position_of = {name: position for position, name in enumerate(saved_names)}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for position, (name, param) in enumerate(zip(names, params, strict=True)):
        values = saved.get(position_of[name])
        if values is None:
            continue
        for key, value in values.items():
            if key != "step" and isinstance(value, torch.Tensor) and value.shape != param.shape:
                raise ValueError(f"the optimiser's {key} of {name} has shape {tuple(value.shape)}, the parameter {tuple(param.shape)}")
        state[position] = values
    current_groups = optimizer.state_dict()["param_groups"]
    saved_group_names = [group.get("name") for group in data["param_groups"]]
    group_names = [group.get("name") for group in current_groups]
    if saved_group_names != group_names:
        raise ValueError(f"the checkpoint's optimiser has the parameter groups {saved_group_names}, this one {group_names}")
    groups = [{**group, "params": current["params"]} for group, current in zip(data["param_groups"], current_groups, strict=True)]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
