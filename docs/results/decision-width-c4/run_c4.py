"""Table IV quick preset with decision modules of hidden width C // 4 (the default is C // 2).

Run from the repository root after README command 1 (it reuses that run's teacher):

    python docs/results/decision-width-c4/run_c4.py
    python examples/compare_runs.py runs/table4-quick-c4 runs/table4-quick --labels C//4 C//2

(compare.md was written by an earlier one-off script computing the same contrasts with the
same functions of sureid.ablation.stats.)

Only the student's decision modules change (the 64-d student: 32 -> 16); the teacher
checkpoint keeps its own. The default is patched for this process only.
"""

import runpy
import sys

import sureid.models.decision as decision

_init = decision.DecisionModule.__init__


def _narrow_init(self, embed_dim, *, hidden_dim=None):
    if hidden_dim is None and embed_dim == 64:  # the quick preset's student only
        hidden_dim = max(4, embed_dim // 4 // 2 * 2)
    _init(self, embed_dim, hidden_dim=hidden_dim)


decision.DecisionModule.__init__ = _narrow_init
sys.argv = ["reproduce_table4.py", "--preset", "quick", "--output-dir", "runs/table4-quick-c4",
            "--teacher-checkpoint", "runs/table4-quick/teacher.pt", "--no-progress"]
runpy.run_path("examples/reproduce_table4.py", run_name="__main__")
