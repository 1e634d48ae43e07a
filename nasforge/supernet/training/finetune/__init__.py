"""Fine-tuning a found subnet from its inherited weights (``nas finetune``): the recipe, the
run and the static model it writes.

Example:
    >>> from nasforge.supernet.training.finetune import load_finetune_recipe
    >>> load_finetune_recipe("finetune_ofa").spaces
    ('ofa_mbv3',)
"""

from __future__ import annotations

from nasforge.supernet.training.finetune.model import MODEL_FORMAT
from nasforge.supernet.training.finetune.model import StaticModel
from nasforge.supernet.training.finetune.model import read_static_model
from nasforge.supernet.training.finetune.model import write_static_model
from nasforge.supernet.training.finetune.recipe import FinetuneRecipe
from nasforge.supernet.training.finetune.recipe import finetune_recipe_from_dict
from nasforge.supernet.training.finetune.recipe import load_finetune_recipe
from nasforge.supernet.training.finetune.run import FinetuneJob
from nasforge.supernet.training.finetune.run import FinetuneOutcome
from nasforge.supernet.training.finetune.run import check_finetune_job
from nasforge.supernet.training.finetune.run import finetune_rank
from nasforge.supernet.training.finetune.run import launch_finetune

__all__ = [
    "MODEL_FORMAT",
    "FinetuneJob",
    "FinetuneOutcome",
    "FinetuneRecipe",
    "StaticModel",
    "check_finetune_job",
    "finetune_rank",
    "finetune_recipe_from_dict",
    "launch_finetune",
    "load_finetune_recipe",
    "read_static_model",
    "write_static_model",
]
