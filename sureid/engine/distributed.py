"""Multi-process training helpers: torchrun set-up, DDP wrapping, clean shutdown.

Typical use (one process per GPU, launched by ``torchrun``)::

    dist_info = init_distributed(timeout_s=600)          # gloo on CPU, nccl on GPUs
    model = wrap_ddp(ReIDModel(...).to(dist_info.device), objective=objective)
    trainer = Trainer(model, objective, opt, device=dist_info.device, is_main=dist_info.is_main)
    ...
    cleanup()

Without torchrun (no ``WORLD_SIZE`` in the environment) everything degrades to a single
process: :func:`init_distributed` initialises nothing and :func:`wrap_ddp` is not needed.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .._checks import check_bool, check_real
from ..models.output import HTSOutput
from ..models.reid_model import ReIDModel, ReIDTrainOutput

__all__ = [
    "DistInfo",
    "barrier",
    "broadcast_module",
    "cleanup",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "sync_gradients",
    "unused_parameters",
    "wrap_ddp",
]

_BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int, got {value!r}") from None


def init_distributed(
    backend: str | None = None,
    *,
    timeout_s: float = 600.0,
    device: str | torch.device | None = None,
) -> DistInfo:
    """Initialise the default process group from torchrun's environment.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT`` via the
    ``env://`` rendezvous). With ``WORLD_SIZE`` unset or 1 nothing is initialised and a
    single-process :class:`DistInfo` is returned, so one script serves both cases.

    ``timeout_s`` bounds every collective: a rank that dies or hangs makes the others fail
    with an error after at most that long instead of waiting forever (torchrun also tears
    the whole job down as soon as one worker exits with an error). For nccl, asynchronous
    error handling is switched on so the timeout really aborts the communicator.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; default nccl when CUDA is available, else gloo.
        timeout_s: collective / rendezvous timeout in seconds, > 0. Keep it above the
            longest stretch one rank spends alone (rank 0's evaluation).
        device: override the device; default ``cuda:LOCAL_RANK`` for nccl, else CPU.

    Returns:
        :class:`DistInfo`; ``device`` is set as the current CUDA device for nccl.

    Raises:
        TypeError: ``timeout_s`` is not a number.
        ValueError: unknown backend, ``timeout_s`` <= 0, nccl without CUDA, bad env values.
    """
    if backend is not None and backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS} or None, got {backend!r}")
    check_real("timeout_s", timeout_s, low=0.0, low_open=True)
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= RANK < WORLD_SIZE, got RANK={rank} WORLD_SIZE={world_size}")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend='nccl' needs CUDA GPUs; use backend='gloo' on CPU")
    if device is None:
        device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size == 1:
        return DistInfo(0, 1, local_rank, device, None)
    if backend == "nccl":
        # abort the communicator on timeout/error instead of hanging in a collective
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    if not dist.is_initialized():
        kwargs = {}
        eager = "device_id" in inspect.signature(dist.init_process_group).parameters
        if backend == "nccl" and eager:
            kwargs["device_id"] = device  # eager NCCL init: errors surface at start-up
        dist.init_process_group(
            backend, init_method="env://", rank=rank, world_size=world_size,
            timeout=datetime.timedelta(seconds=float(timeout_s)), **kwargs,
        )
    return DistInfo(rank, world_size, local_rank, device, backend)


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Whether this is rank 0 (or the only process)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if get_world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    """Destroy the default process group if one exists.

    Call it at the end of every rank's script, once the last collective is done and the DDP
    wrappers (which hold the group) are dropped: a gloo group left for the interpreter to
    tear down at exit can abort the process (``terminate called without an active
    exception``).
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _register_outputs_as_pytrees() -> None:
    # DDP passes forward outputs through pytree flattening (its _DDPSink, used with
    # find_unused_parameters and static_graph). Unregistered dataclasses would be opaque
    # leaves and the tensors inside would bypass the sink.
    from torch.export import register_dataclass

    for cls in (HTSOutput, ReIDTrainOutput):
        if cls in _REGISTERED:
            continue
        try:
            register_dataclass(cls)
        except ValueError as exc:  # registered by someone else: fine
            if "already registered" not in str(exc):
                raise
        _REGISTERED.add(cls)


_REGISTERED: set[type] = set()


def unused_parameters(model: nn.Module, objective: nn.Module | None = None) -> list[str]:
    """Names of trainable parameters that a training step of ``model`` never uses.

    The model says so itself (:meth:`~sureid.models.ReIDModel.inactive_parameters`,
    :meth:`~sureid.HTSViT.inactive_parameters`), so DDP only pays for unused-parameter
    search when needed; a model without that method is assumed to use every parameter.

    Args:
        model: a :class:`ReIDModel` or an :class:`~sureid.HTSViT` (``module`` of a DDP).
        objective: the :class:`~sureid.SUReIDLoss` of the run, if known: without its
            reweight terms (``use_reweight``) the reweight head is unused.
    """
    model = getattr(model, "module", model)
    if isinstance(model, ReIDModel):
        aux_loss = True if objective is None else bool(getattr(objective, "use_reweight", True))
        return model.inactive_parameters(aux_loss=aux_loss)
    inactive = getattr(model, "inactive_parameters", None)
    return list(inactive()) if callable(inactive) else []


def wrap_ddp(
    model: nn.Module,
    *,
    device: str | torch.device | None = None,
    objective: nn.Module | None = None,
    sync_batchnorm: bool = False,
    find_unused_parameters: bool | None = None,
    static_graph: bool = False,
    sync_buffers: bool = True,
) -> DistributedDataParallel:
    """Wrap a :class:`ReIDModel` (or any module) in ``DistributedDataParallel``.

    The training forward returns dataclasses (:class:`ReIDTrainOutput` holding an
    :class:`~sureid.HTSOutput`); they are registered as pytrees
    (``torch.export.register_dataclass``) so DDP sees the tensors in them.
    ``find_unused_parameters=None`` turns DDP's per-step search on only when
    :func:`unused_parameters` names a parameter (default config: all parameters get a
    gradient, so no search). If your objective leaves another head unused, pass ``True``;
    DDP otherwise stops with "Expected to have finished reduction" on the next step.

    Args:
        model: already on its device; parameters are broadcast from rank 0 by DDP.
        device: the process's device; default the device of the model's parameters.
        objective: the run's :class:`~sureid.SUReIDLoss`, to tell which heads it uses. Its
            own parameters (``NPKDLoss(align="linear")``) are NOT part of DDP: call
            :func:`broadcast_module` and :func:`sync_gradients` on it.
        sync_batchnorm: convert BatchNorm layers (the BNNeck) to ``SyncBatchNorm``, which
            normalises over the global batch. CUDA only (PyTorch has no CPU SyncBatchNorm).
        find_unused_parameters: ``None`` (auto; ``False`` with ``static_graph``), ``True``
            or ``False``.
        static_graph: DDP's static-graph mode (same used parameters every step; it detects
            unused parameters in the first step, so the search is not needed).
        sync_buffers: copy rank 0's buffers (BN running stats) to all ranks before each
            forward (DDP's ``forward_sync_buffers``, formerly ``broadcast_buffers``).

    Raises:
        RuntimeError: no process group initialised (call :func:`init_distributed`).
        ValueError: ``sync_batchnorm`` on a CPU device.
        TypeError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if isinstance(model, DistributedDataParallel):
        raise TypeError("model is already wrapped in DistributedDataParallel")
    for name, flag in (("sync_batchnorm", sync_batchnorm), ("static_graph", static_graph),
                       ("sync_buffers", sync_buffers)):
        check_bool(name, flag)
    if find_unused_parameters is not None and not isinstance(find_unused_parameters, bool):
        raise TypeError(
            f"find_unused_parameters must be a bool or None, got {find_unused_parameters!r}"
        )
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    if sync_batchnorm and device.type == "cpu":
        raise ValueError(
            "sync_batchnorm=True needs CUDA devices (PyTorch's SyncBatchNorm has no CPU "
            f"kernel), got device {device}; use sync_batchnorm=False with gloo on CPU"
        )
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "wrap_ddp needs an initialised process group: call init_distributed() under "
            "torchrun first (single process: use the model without DDP)"
        )
    if sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if find_unused_parameters is None:  # static_graph finds unused parameters by itself
        find_unused_parameters = not static_graph and bool(unused_parameters(model, objective))
    _register_outputs_as_pytrees()
    # torch >= 2.14 renamed broadcast_buffers (deprecated, warns) to forward_sync_buffers
    new_name = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    buffers = {"forward_sync_buffers" if new_name else "broadcast_buffers": sync_buffers}
    return DistributedDataParallel(
        model,
        device_ids=[device] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
        static_graph=static_graph,
        **buffers,
    )


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy ``module``'s parameters and buffers from rank ``src`` to all ranks (in place)."""
    if get_world_size() == 1:
        return
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src)


def sync_gradients(module: nn.Module) -> list:
    """Average the gradients of ``module``'s parameters over ranks as they are accumulated.

    For trainable parameters outside the DDP model, e.g. an ``NPKDLoss(align="linear")``
    projector inside the objective: without this each rank would step its own copy. Hooks
    run synchronously during ``backward()``; call :func:`broadcast_module` first so the
    copies start equal. Returns the hook handles (``handle.remove()`` undoes it).
    """
    if get_world_size() == 1:
        return []
    world = get_world_size()

    def hook(p: torch.Tensor) -> None:
        dist.all_reduce(p.grad)
        p.grad.div_(world)

    params = [p for p in module.parameters() if p.requires_grad]
    return [p.register_post_accumulate_grad_hook(hook) for p in params]
