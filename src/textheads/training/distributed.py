"""Which process this is, and the few collectives the loop needs, through Hugging Face accelerate.

`textheads train` runs as one process, or as several started by
`accelerate launch` or `torchrun` (data parallel, gloo on CPUs, NCCL on
GPUs). Every process runs the same loop on its share of each batch; only the
main process writes files and prints. Decisions that end or shape the loop
(early stopping, the time budget) are taken by the main process and sent to
the others, so no process waits on a collective another one skipped.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch

T = TypeVar("T")


def wants_cpu(device_name: str) -> bool:
    """True when `train.device` means the CPU (`auto` without a CUDA GPU)."""
    return device_name == "cpu" or (device_name == "auto" and not torch.cuda.is_available())


def process_state(device_name: str = "auto") -> Any:
    """accelerate's `PartialState` for `train.device`: starts the process group under a
    launcher (once per process), and is a plain single process otherwise."""
    from accelerate import PartialState

    if device_name.startswith("cuda:") and torch.cuda.is_available():
        # One process: `cuda:N` picks the GPU. Under a launcher each process takes its local rank's.
        torch.cuda.set_device(int(device_name.split(":", 1)[1]))
    return PartialState(cpu=wants_cpu(device_name))


def start_accelerator(device_name: str) -> Any:
    """An `Accelerator` on `train.device`, mixed precision off: `train.precision` is applied by
    the loop itself (accelerate runs fp16 on a CPU as fp32, silently), so a launcher's
    `--mixed_precision` does not override the config."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    state = process_state(device_name)
    shared = AcceleratorState._shared_state
    if shared and state.num_processes == 1 and (shared.get("device") != state.device or shared.get("_mixed_precision") != "no"):
        # One process that trained before on another device or with accelerate's mixed precision
        # (a notebook, the transformers Trainer): accelerate refuses to change its state, so start afresh.
        AcceleratorState._reset_state()
    from accelerate.utils import DistributedDataParallelKwargs

    # The encoder's own pooler (BERT's) is trainable but unused by textheads' pooling.
    unused = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(cpu=wants_cpu(device_name), mixed_precision="no", kwargs_handlers=[unused])


def is_main_process() -> bool:
    """True in the process that writes files: the only one, or rank 0 under a launcher."""
    from accelerate import PartialState

    return bool(PartialState().is_main_process)


def num_processes() -> int:
    from accelerate import PartialState

    return int(PartialState().num_processes)


def wait_for_everyone() -> None:
    """A barrier; nothing when there is one process."""
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def from_main(value: T) -> T:
    """The main process's `value`, on every process (any picklable value; sent, never written)."""
    if num_processes() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


def gathered(value: T) -> list[T]:
    """Every process's `value`, in rank order, on every process."""
    if num_processes() == 1:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * num_processes()
    dist.all_gather_object(values, value)
    return values


def summed(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of `tensor` over all processes (a new tensor)."""
    if num_processes() == 1:
        return tensor
    import torch.distributed as dist

    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total
