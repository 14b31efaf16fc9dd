"""The model the command line names, loaded and wrapped as its options say."""

from __future__ import annotations

__all__ = ["extractor", "load_model"]


def load_model(path: str, device: str = "cpu", keep_ratio: float | None = None,
               fused_decision: bool = False):
    """The model file at ``path``; ``keep_ratio`` (already in (0, 1], see ``--keep-ratio``)
    sets an HTS model's stages to keep ``p, p^2, ...`` of the patch tokens, and
    ``fused_decision`` (``--fused-decision``) switches on its fused decision stages."""
    from ..hub import load

    model = load(path, map_location=device)
    if keep_ratio is not None:
        if not getattr(model.backbone, "prune", False):
            raise ValueError(f"--keep-ratio needs an HTS model (pruning on); {path} keeps every "
                             "token")
        model.backbone.keep_ratios = [keep_ratio ** (s + 1)
                                      for s in range(len(model.backbone.keep_ratios))]
    if fused_decision:
        backbone = model.backbone
        if not (getattr(backbone, "prune", False) and getattr(backbone, "decision", None)):
            raise ValueError(f"--fused-decision needs an HTS model with decision modules and "
                             f"pruning on; {path} has none to fuse")
        backbone.fused_decision = True
    return model


def extractor(model, args, *, kept: bool = False):
    """A :class:`sureid.inference.FeatureExtractor` with the ``--device``, ``--batch-size``,
    ``--flip``, ``--workers`` and ``--no-progress`` options."""
    from ..inference import FeatureExtractor

    return FeatureExtractor(
        model, device=args.device, batch_size=args.batch_size, flip=args.flip,
        kept_indices=kept, progress=not args.no_progress, num_workers=args.workers,
    )
