"""reproduce_table4.py with one HTS component switched, for the +HTS cost diagnostic
(docs/reproduce.md, "Cause found"; a diagnostic record, not part of the test suite).

Modes (the switch patches the library for this process only):

* ``detach``: the decision modules read ``x.detach()``: no gradient from the decisions or the
  ratio loss reaches the ViT; the modules still learn.
* ``random``: the decision modules return a constant keep log-probability (``KEEP`` in the
  environment, default 0.7, of the tokens entering each stage), so the Gumbel masks keep
  random tokens; nothing is learned. ``KEEP=0.999999`` with ``--keep-ratio 0.99`` gives
  masks of all ones through the masked training path.
* ``softmargin``: the objective's triplet term with the soft margin (softplus), not 0.3.
* ``notri``: the objective's triplet term is zero (ID, auxiliary ID and ratio terms only).
* ``none``: unchanged.

Usage::

    python docs/results/masked-grad/run_variant.py detach examples/reproduce_table4.py \\
        --preset quick --output-dir runs/diag/detach --rows +HTS --epochs 20 --seeds 1
"""

import math
import os
import runpy
import sys

import torch

from sureid.losses import objective, reid
from sureid.models import decision as dm

mode, script, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
original = dm.DecisionModule.forward

if mode == "detach":
    def forward(self, x, mask=None):
        return original(self, x.detach(), mask)
    dm.DecisionModule.forward = forward
elif mode == "random":
    def forward(self, x, mask=None):
        keep = float(os.environ.get("KEEP", "0.7"))
        logits = x.new_zeros(*x.shape[:2], 2)
        logits[..., 1] = math.log(keep / (1 - keep))
        return logits.log_softmax(-1)
    dm.DecisionModule.forward = forward
elif mode == "softmargin":
    objective.TripletLoss = lambda margin=0.3, **kw: reid.TripletLoss(margin=None, **kw)
elif mode == "notri":
    class NoTriplet(torch.nn.Module):
        def forward(self, features, labels):
            return features.sum() * 0.0
    objective.TripletLoss = lambda margin=0.3, **kw: NoTriplet()
elif mode != "none":
    raise SystemExit(f"unknown mode {mode!r}")
print(f"diagnostic mode {mode}", flush=True)
sys.argv = [script, *argv]
runpy.run_path(script, run_name="__main__")
