"""What lands on disk for a model, last step of the estimators' flow: checkpoints and
exports, never pickle.

A model directory::

    model_dir/
      checkpoint.json              {"latest": "ckpt-120", "all": ["ckpt-100", "ckpt-120"]}
      ckpt-120.json                global_step, estimator class and params, head, network,
                                   feature columns (vocabularies inlined), optimizer settings
      ckpt-120.safetensors         the network's weights
      ckpt-120.optim.safetensors   the optimizers' state tensors
      events.out.tfevents.*        TensorBoard events (outside a training run)

An export (``estimator.export(path)``)::

    path/
      spec.json                    format, head, network, feature columns
      model.safetensors            the weights
"""

from trainrun.model_dir.checkpoints import (
    Checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)

__all__ = [
    "Checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]
