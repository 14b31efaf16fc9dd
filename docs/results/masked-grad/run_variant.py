"""reproduce_table4.py with one HTS component switched, for the +HTS collapse diagnostic.

mode: detach  -- the decision modules read x.detach() (no gradient from the decisions or the
                 ratio loss reaches the backbone; the modules still learn)
      random  -- the decision modules return a constant keep log-probability of 0.7, so the
                 Gumbel masks keep random tokens at the preset's ratio (no learned decisions)
      softmargin -- the objective's triplet term with the soft margin (softplus), not 0.3
      notri   -- the objective's triplet term is zero (ID loss, aux ID, ratio only)
      none    -- unchanged
"""
import math, os, runpy, sys, torch
from sureid.models import decision as dm
mode, argv = sys.argv[1], sys.argv[2:]
orig = dm.DecisionModule.forward
if mode == "detach":
    def forward(self, x, mask=None):
        return orig(self, x.detach(), mask)
    dm.DecisionModule.forward = forward
elif mode == "random":
    def forward(self, x, mask=None):
        logits = x.new_zeros(*x.shape[:2], 2)
        keep = float(os.environ.get("KEEP", "0.7"))  # per stage, of the tokens entering it
        logits[..., 1] = math.log(keep / (1 - keep))
        return logits.log_softmax(-1)
    dm.DecisionModule.forward = forward
elif mode == "softmargin":
    from sureid.losses import objective, reid
    objective.TripletLoss = lambda margin=0.3, **kw: reid.TripletLoss(margin=None, **kw)
elif mode == "notri":
    from sureid.losses import objective

    class NoTriplet(torch.nn.Module):
        def forward(self, features, labels):
            return features.sum() * 0.0

    objective.TripletLoss = lambda margin=0.3, **kw: NoTriplet()
elif mode != "none":
    raise SystemExit(f"unknown mode {mode}")
print(f"diagnostic mode {mode}", flush=True)
sys.argv = ["reproduce_table4.py", *argv]
runpy.run_path("/work/main/examples/reproduce_table4.py", run_name="__main__")
