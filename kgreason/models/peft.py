"""Parameter-efficient fine-tuning of the text encoder with the ``peft`` library.

:func:`apply_peft` wraps ``model.encoder`` (LoRA, AdaLoRA or prefix tuning); the GNN and the head stay fully
trainable, the encoder's own weights are frozen. ``save_pretrained`` writes LoRA / AdaLoRA merged into the base
weights (a plain model) and prefix tuning as an adapter folder beside the weights (see
:mod:`kgreason.models.pretrained`).

AdaLoRA re-allocates ranks during training: it needs the total number of optimizer steps, a call of
:func:`peft_after_step` after each optimizer step, and adds :func:`adalora_regularization` to the loss (the
model does this in training mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kgreason.core.config import setting

if TYPE_CHECKING:
    from torch import Tensor, nn


PEFT_METHODS = ("none", "lora", "adalora", "prefix")


@dataclass
class PeftConfig:
    """Parameter-efficient fine-tuning of the text encoder through the ``peft`` library.

    ``method``: ``none`` (full fine-tuning), ``lora``, ``adalora`` or ``prefix``. ``target_modules`` defaults to the
    attention projections of BERT-family models (``query``, ``value``).
    """

    method: str = setting("none", choices=PEFT_METHODS)
    r: int = setting(8, ge=1)
    alpha: int = setting(16, ge=1)
    dropout: float = setting(0.1, ge=0, le=1)
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"])
    num_virtual_tokens: int = setting(20, ge=1)


def is_peft_model(module: Any) -> bool:
    """Whether ``module`` is a ``peft.PeftModel`` (without importing peft when it is not loaded)."""
    return hasattr(module, "peft_config") and callable(getattr(module, "get_base_model", None))


def peft_method(module: Any) -> str:
    """``lora``, ``adalora``, ``prefix`` for a PEFT-wrapped encoder, else ``none``."""
    if not is_peft_model(module):
        return "none"
    kind = str(module.peft_config[module.active_adapter].peft_type.value).lower()
    return {"lora": "lora", "adalora": "adalora", "prefix_tuning": "prefix"}.get(kind, kind)


def apply_peft(model: nn.Module, peft_config: PeftConfig, *, total_steps: int | None = None) -> nn.Module:
    """Wrap ``model.encoder`` for ``peft_config.method`` and return ``model`` (``none``: unchanged).

    Args:
        model: a model with an ``encoder`` attribute (a Hugging Face encoder).
        peft_config: method, rank ``r``, ``alpha``, ``dropout``, ``target_modules``, ``num_virtual_tokens``.
        total_steps: optimizer steps of the whole run (required by AdaLoRA's rank schedule).

    Raises:
        ValueError: an unknown method, a model without encoder, an encoder already wrapped, target modules not
            in the encoder, or AdaLoRA without ``total_steps``.
    """
    method = str(peft_config.method).lower()
    if method not in PEFT_METHODS:
        raise ValueError(f"peft.method must be one of {', '.join(PEFT_METHODS)}, got {peft_config.method!r}")
    if method == "none":
        return model
    encoder = getattr(model, "encoder", None)
    if encoder is None:
        raise ValueError(
            f"peft.method={method!r} tunes the text encoder, but this model has none (graph variant)"
        )
    if is_peft_model(encoder):
        raise ValueError(f"the encoder is already wrapped for {peft_method(encoder)!r}")
    from peft import AdaLoraConfig, LoraConfig, PrefixTuningConfig, TaskType, get_peft_model

    targets = list(peft_config.target_modules)
    if method in ("lora", "adalora"):
        names = {name.rsplit(".", 1)[-1] for name, _ in encoder.named_modules()}
        absent = [t for t in targets if t not in names]
        if absent:
            linear = sorted(
                {n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if type(m).__name__ == "Linear"}
            )
            raise ValueError(
                f"peft.target_modules {absent} are not modules of the encoder "
                f"({type(encoder).__name__}); its linear layers are named {linear}"
            )
    if method == "lora":
        config = LoraConfig(
            r=peft_config.r,
            lora_alpha=peft_config.alpha,
            lora_dropout=peft_config.dropout,
            target_modules=targets,
            bias="none",
        )
    elif method == "adalora":
        if not total_steps or total_steps < 2:
            raise ValueError("peft.method='adalora' needs total_steps (the number of optimizer steps, >= 2)")
        config = AdaLoraConfig(
            init_r=peft_config.r,
            target_r=max(1, peft_config.r // 2),
            lora_alpha=peft_config.alpha,
            lora_dropout=peft_config.dropout,
            target_modules=targets,
            total_step=total_steps,
            tinit=0,
            tfinal=0,
        )
    else:
        config = PrefixTuningConfig(
            task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=peft_config.num_virtual_tokens
        )
    model.encoder = get_peft_model(encoder, config)
    return model


def peft_after_step(model: nn.Module, *, global_step: int) -> None:
    """Call after each optimizer step (before ``zero_grad``): AdaLoRA's rank update; a no-op otherwise."""
    encoder = getattr(model, "encoder", None)
    if peft_method(encoder) == "adalora":
        encoder.base_model.update_and_allocate(global_step)


def adalora_regularization(encoder: Any) -> Tensor | None:
    """AdaLoRA's orthogonality penalty ``orth_reg_weight · mean ||P Pᵀ - I||_F`` (``None`` for other encoders)."""
    import torch

    if peft_method(encoder) != "adalora":
        return None
    adapter = encoder.active_adapter
    weight = encoder.peft_config[adapter].orth_reg_weight
    terms = []
    for name, param in encoder.named_parameters():
        if ("lora_A" in name or "lora_B" in name) and adapter in name and param.requires_grad:
            cov = param @ param.T if "lora_A" in name else param.T @ param  # (r, r)
            terms.append(
                torch.linalg.matrix_norm(cov - torch.eye(cov.size(0), device=cov.device, dtype=cov.dtype))
            )
    if not terms:
        return None
    return weight * torch.stack(terms).mean()
