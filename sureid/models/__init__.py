"""sureid.models: ViT backbones and hierarchical token sparsification (HTS)."""

from .decision import DecisionModule
from .hts import gumbel_keep_decision, masked_attention, num_kept_tokens, select_topk_tokens
from .hts_vit import HTSViT
from .output import HTSOutput
from .patch_embed import ConvStem, PatchEmbed
from .pos_embed import resample_pos_embed
from .pretrained import PretrainedReport, load_pretrained
from .timm_backbone import create_timm_model
from .vit import VisionTransformer, deit_small, deit_tiny, vit_base
from .weights_file import PretrainedWeightsError

__all__ = [
    "ConvStem",
    "DecisionModule",
    "HTSOutput",
    "HTSViT",
    "PatchEmbed",
    "PretrainedReport",
    "PretrainedWeightsError",
    "VisionTransformer",
    "create_timm_model",
    "deit_small",
    "deit_tiny",
    "gumbel_keep_decision",
    "load_pretrained",
    "masked_attention",
    "num_kept_tokens",
    "resample_pos_embed",
    "select_topk_tokens",
    "vit_base",
]

# training heads and the NPKD teacher wrapper (objectives)
from .heads import BNNeck  # noqa: E402
from .reid_model import ReIDModel, ReIDTrainOutput  # noqa: E402
from .reweight import ClsTokenReweight, ReweightOutput, cls_token_reweight  # noqa: E402
from .teacher import FrozenTeacher  # noqa: E402

__all__ += [
    "BNNeck",
    "ClsTokenReweight",
    "FrozenTeacher",
    "ReIDModel",
    "ReIDTrainOutput",
    "ReweightOutput",
    "cls_token_reweight",
]
