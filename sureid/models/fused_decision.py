"""One HTS inference stage as one compiled CPU call: decision module, top-k and gather.

At batch 1 a small ViT's decision module is a dozen tiny operators whose fixed per-call cost
outweighs their arithmetic (about 20 % of the quick preset's pruned forward; docs/hts.md,
"Fused decision"). ``csrc/hts_stage.cpp`` runs a whole stage, for float32 on the CPU, in one
call: the same layers as :class:`~sureid.models.decision.DecisionModule` (``mask=None``) and
the same selection as :func:`~sureid.models.hts.select_topk_tokens`.

The kernel is compiled with :func:`torch.utils.cpp_extension.load` on first use and cached
by torch (``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``): about 30 s once
per machine, CPU capability and torch version, then about 50 ms per process to load.
It needs a C++ compiler and ninja (``pip install ninja``) for that first build.

Not bit-identical to the eager module: each output is a sequential sum over its inputs and
GELU's erf is a polynomial, so the keep log-probabilities agree to within a few 1e-6 and two tokens
whose scores tie that closely can be ranked the other way. Deterministic, and the same for any
thread count.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType

import torch

from .._amp import autocast_enabled
from .._checks import check_int
from .decision import DecisionModule
from .hts import gather_tokens

__all__ = [
    "can_fuse", "fused_select_tokens", "fused_stages", "load_stage_kernel", "stage_scores",
]

_SOURCE = Path(__file__).with_name("csrc") / "hts_stage.cpp"
_FLAGS = ["-O3", "-fno-trapping-math", "-fno-math-errno"]
# instruction sets by torch's CPU capability (the same dispatch ATen's own kernels use)
_ISA_FLAGS = {
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma"],
    "AVX2": ["-mavx2", "-mfma"],
}
_kernel: ModuleType | None = None
_lock = threading.Lock()


def _compiling() -> bool:
    """Tracing, scripting or torch.compile: those see the eager operators, not the kernel."""
    compiling = getattr(torch.compiler, "is_compiling", None)
    return (torch.jit.is_tracing() or torch.jit.is_scripting()
            or (compiling is not None and compiling()))


def load_stage_kernel(*, verbose: bool = False) -> ModuleType:
    """The compiled stage kernel, built on the first call of the process (or loaded from
    torch's extension cache) and kept.

    Raises:
        RuntimeError: it could not be built (no C++ compiler or ninja); the message says how
            to get the eager path instead.
    """
    global _kernel
    if _kernel is None:
        with _lock:
            if _kernel is None:
                _kernel = _build(verbose)
    return _kernel


def _build(verbose: bool) -> ModuleType:
    # torch.utils.cpp_extension logs a warning about CUDA_HOME when imported on a CPU-only
    # machine; it concerns CUDA extensions, not this one
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        log.setLevel(level)
    capability = torch.backends.cpu.get_cpu_capability()
    flags = _FLAGS + _ISA_FLAGS.get(capability, [])
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join([torch.__version__, *flags]).encode()).hexdigest()
    # the capability in the name: a cache folder shared by machines (an NFS home) never hands
    # an AVX-512 build to a CPU without it
    name = f"sureid_hts_stage_{capability.lower()}_{key[:12]}"
    # torch keeps no public name for the build folder; without it there is just no message
    folder = getattr(cpp_extension, "_get_build_directory", None)
    if folder is None or not (Path(folder(name, verbose=False)) / f"{name}.so").exists():
        print("sureid: compiling the fused HTS stage kernel (once per machine, about 30 s)",
              file=sys.stderr, flush=True)
    try:
        return cpp_extension.load(name, [str(_SOURCE)], extra_cflags=flags, verbose=verbose)
    except (OSError, RuntimeError, ImportError, subprocess.CalledProcessError) as err:
        raise RuntimeError(
            "fused_decision=True needs sureid's HTS stage kernel, which could not be built "
            f"({type(err).__name__}: {err}). The first build needs a C++ compiler (g++ or "
            "clang++) and ninja (`pip install ninja`); set fused_decision=False (the default) "
            "for the eager decision modules"
        ) from err


def can_fuse(decisions: torch.nn.Module | Sequence[torch.nn.Module], x: torch.Tensor) -> bool:
    """Whether :func:`fused_select_tokens` computes what the eager path would for ``x``: every
    module of ``decisions`` (one, or one per stage) is exactly a :class:`DecisionModule` (not
    a subclass), ``x`` and their parameters are float32 on the CPU, and nothing traces,
    scripts, compiles or autocasts the call. The same for every stage of a forward, so
    :class:`~sureid.HTSViT` asks once per forward."""
    if isinstance(decisions, DecisionModule):
        decisions = (decisions,)
    if not (x.device.type == "cpu" and x.dtype == torch.float32) or _compiling() \
            or autocast_enabled("cpu"):
        return False
    for decision in decisions:
        if type(decision) is not DecisionModule:
            return False
        # the LayerNorm's weight through the modules' dicts (Sequential indexing and
        # Module.__getattr__ cost about a microsecond each, per stage and forward)
        norm = next(iter(decision._modules["in_conv"]._modules.values()))
        weight = norm._parameters["weight"]
        if weight is None or weight.device.type != "cpu" or weight.dtype != torch.float32:
            return False
    return True


def _kernel_args(decision: DecisionModule) -> tuple:
    """The module's parameters in the kernel's order, read through the modules' own dicts:
    Module.__getattr__ would cost a microsecond a name, as much as the gather (issue 28)."""
    norm, lin, _ = decision._modules["in_conv"]._modules.values()
    first, _, second, _, last, _ = decision._modules["out_conv"]._modules.values()
    pn, pl, p1, p2, p3 = (m._parameters for m in (norm, lin, first, second, last))
    return (pn["weight"], pn["bias"], norm.eps, pl["weight"], pl["bias"], p1["weight"],
            p1["bias"], p2["weight"], p2["bias"], p3["weight"], p3["bias"])


def fused_select_tokens(
    x: torch.Tensor, decision: DecisionModule, k: int, num_prefix_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``select_topk_tokens(x, decision(x[:, P:])[..., 1], k, P)`` in one compiled call.

    Args:
        x: ``(B, P + N, C)`` float32 CPU tokens (see :func:`can_fuse`).
        decision: the stage's :class:`DecisionModule` (width ``C``).
        k: patch tokens to keep, ``1 <= k <= N``.
        num_prefix_tokens: ``P``, kept in front.

    Returns:
        ``x_kept (B, P + k, C)`` and ``idx (B, k)`` in increasing order, as
        :func:`~sureid.models.hts.select_topk_tokens`. Gradients flow into ``x`` through
        the gather (computed by torch when ``x`` needs them), never into ``decision``: the
        scores only pick indices, as on the eager path.

    Raises:
        ValueError: ``x``'s shape or ``k`` do not fit, or :func:`can_fuse` says no.
        RuntimeError: the kernel could not be built (see :func:`load_stage_kernel`).
    """
    _check(x, decision, k, num_prefix_tokens)
    return _select(partial(load_stage_kernel().hts_stage, *_kernel_args(decision)), x, k,
                   num_prefix_tokens)


def fused_stages(decisions: Sequence[DecisionModule]) -> list[Callable[..., Sequence]]:
    """One call per module, ``stage(x, k, num_prefix_tokens) -> (x_kept, idx)``, as
    :func:`fused_select_tokens` without its checks, with the parameters bound once: what
    :class:`~sureid.HTSViT` prepares at the start of a forward (after :func:`can_fuse`), so
    that no Python runs per stage beyond the call (between two blocks each Python step costs
    several times what it costs in a loop; docs/hts.md, "Fused decision"). Without grad mode
    (``torch.no_grad``, ``torch.inference_mode``) the calls are the kernel itself."""
    kernel = load_stage_kernel().hts_stage
    bound = [partial(kernel, *_kernel_args(d)) for d in decisions]
    return [partial(_select, run) for run in bound] if torch.is_grad_enabled() else bound


def _select(run: Callable[..., list], x: torch.Tensor, k: int, num_prefix_tokens: int
            ) -> tuple[torch.Tensor, torch.Tensor]:
    if x.requires_grad and torch.is_grad_enabled():  # the gather by torch, differentiable
        idx = run(x, k, num_prefix_tokens, False)[1]
        return gather_tokens(x, idx, num_prefix_tokens), idx
    kept, idx = run(x, k, num_prefix_tokens)
    return kept, idx


def stage_scores(x: torch.Tensor, decision: DecisionModule, num_prefix_tokens: int
                 ) -> torch.Tensor:
    """The kernel's keep log-probabilities ``(B, N)``: what ``decision(x[:, P:])[..., 1]``
    computes eagerly, to within a few 1e-6 (for tests and for checking near-ties)."""
    _check(x, decision, 1, num_prefix_tokens)
    return load_stage_kernel().hts_stage(*_kernel_args(decision), x, 1, num_prefix_tokens,
                                         False, True)[2]


def _check(x: torch.Tensor, decision: torch.nn.Module, k: int, num_prefix_tokens: int) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a (B, P + N, C) tensor, got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"x must be a (B, P + N, C) tensor, got shape {tuple(x.shape)}")
    check_int("k", k)
    check_int("num_prefix_tokens", num_prefix_tokens, low=0)
    if not can_fuse(decision, x):
        raise ValueError(
            "the fused stage needs a DecisionModule and float32 CPU tokens and parameters, "
            f"outside tracing and autocast; got {type(decision).__name__}, x {x.dtype} on "
            f"{x.device.type}"
        )
    n = x.shape[1] - num_prefix_tokens
    if x.shape[2] != decision.embed_dim or n < 1:
        raise ValueError(f"x must have shape (B, {num_prefix_tokens} + N, {decision.embed_dim})"
                         f" with N >= 1, got {tuple(x.shape)}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")

