"""Seq2SeqTrainer: the Trainer whose evaluate() and predict() can score generated text.

With `Seq2SeqTrainingArguments(predict_with_generate=True)`, `prediction_step` returns the
token ids `model.generate()` produces (right-padded to the generation's max_length, labels
too) instead of logits, as `transformers.Seq2SeqTrainer` does; `evaluate()` and `predict()`
take generate()'s keyword arguments (`max_length`, `num_beams`, ...) for that pass. The loss
is the model's own on the batch (teacher-forced), label-smoothed when label_smoothing_factor
is set, as in Transformers.
"""

from __future__ import annotations

from typing import Any

import torch

from trainer.compat import generation_default, uncompiled
from trainer.evaluation import PredictionOutput
from trainer.model_io import autocast, extract_loss
from trainer.trainer import Trainer


class Seq2SeqTrainer(Trainer):
    """`transformers.Seq2SeqTrainer`'s contract on our loop (see the module doc)."""

    # generate()'s keyword arguments for the evaluate() / predict() pass under way.
    _gen_kwargs: dict[str, Any]

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        args: Any = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        model_init: Any = None,
        compute_loss_func: Any = None,
        compute_metrics: Any = None,
        callbacks: list[Any] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        preprocess_logits_for_metrics: Any = None,
    ) -> None:
        """Transformers' Seq2SeqTrainer parameters, in its order (it has no
        optimizer_cls_and_kwargs)."""
        super().__init__(
            model=model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            model_init=model_init,
            compute_loss_func=compute_loss_func,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        self._gen_kwargs = {}
        # args.generation_config overrides the model's (Transformers' priority: the args', the
        # model's, then GenerationConfig's defaults). A model_init's models get it when built.
        self._generation_config = None
        if getattr(self.args, "generation_config", None) is not None:
            self._generation_config = self.load_generation_config(self.args.generation_config)
            if self.model is not None:
                self.model.generation_config = self._generation_config

    @staticmethod
    def load_generation_config(gen_config_arg: Any) -> Any:
        """A GenerationConfig from the object itself (copied), a directory, a file or a model
        id, strictly validated: Transformers' own loader."""
        from transformers import Seq2SeqTrainer as TransformersSeq2SeqTrainer

        return TransformersSeq2SeqTrainer.load_generation_config(gen_config_arg)

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
        **gen_kwargs: Any,
    ) -> dict[str, float]:
        self._gen_kwargs = self._with_args_defaults(gen_kwargs)
        return super().evaluate(
            eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix
        )

    def predict(
        self,
        test_dataset: Any,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "test",
        **gen_kwargs: Any,
    ) -> PredictionOutput:
        self._gen_kwargs = self._with_args_defaults(gen_kwargs)
        return super().predict(
            test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix
        )

    def _with_args_defaults(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's generate() arguments, with generation_max_length / generation_num_beams
        where the call names no length / beams of its own."""
        gen_kwargs = dict(gen_kwargs)
        max_length = getattr(self.args, "generation_max_length", None)
        num_beams = getattr(self.args, "generation_num_beams", None)
        if gen_kwargs.get("max_length") is None and gen_kwargs.get("max_new_tokens") is None:
            if max_length is not None:
                gen_kwargs["max_length"] = max_length
        if gen_kwargs.get("num_beams") is None and num_beams is not None:
            gen_kwargs["num_beams"] = num_beams
        return gen_kwargs

    def prediction_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
        **gen_kwargs: Any,
    ) -> tuple[torch.Tensor | None, Any, Any]:
        """(loss, generated ids, labels) with predict_with_generate, else the Trainer's step."""
        if not getattr(self.args, "predict_with_generate", False) or prediction_loss_only:
            return super().prediction_step(
                model, inputs, prediction_loss_only=prediction_loss_only, ignore_keys=ignore_keys
            )
        # Transformers' Seq2SeqTrainer reads the `labels` column, whatever label_names says.
        inputs, labels = self._evaluation_inputs(model, inputs, names=["labels"])
        has_labels = labels is not None
        if not gen_kwargs:
            gen_kwargs = dict(self._gen_kwargs)
        gen_kwargs = {
            k: v
            for k, v in gen_kwargs.items()
            if not (k in ("num_beams", "max_length") and v is None)
        }
        generator = uncompiled(model)
        if (
            self._generation_config is not None
            and generator.generation_config is not self._generation_config
        ):
            generator.generation_config = self._generation_config
        generation_inputs = inputs
        # decoder_input_ids made from the labels would make generate() continue them instead
        # of generating freely; Transformers drops them (and their mask) too.
        decoder_ids = inputs.get("decoder_input_ids")
        if labels is not None and decoder_ids is not None and labels.shape == decoder_ids.shape:
            generation_inputs = {
                k: v
                for k, v in inputs.items()
                if k not in ("decoder_input_ids", "decoder_attention_mask")
            }
        with torch.no_grad():
            generated = generator.generate(**generation_inputs, **gen_kwargs)
        config = generator.generation_config
        max_length = (
            config.max_length if config.max_length is not None else generation_default("max_length")
        )
        max_new_tokens = config.max_new_tokens
        generated = self._pad_to_generation_length(generated, max_length, max_new_tokens)
        loss = None
        if has_labels:
            with torch.no_grad(), autocast(self.args, self.args.device):
                outputs = model(**inputs)
            if self.label_smoother is not None:
                loss = self.label_smoother(outputs, labels).detach().mean()
            else:
                loss = extract_loss(outputs).detach().mean()
        if self.args.prediction_loss_only:
            return loss, None, None
        if labels is not None:
            labels = self._pad_to_generation_length(labels, max_length, max_new_tokens)
        return loss, generated, labels

    def _pad_to_generation_length(
        self, tensor: torch.Tensor, max_length: int, max_new_tokens: int | None
    ) -> torch.Tensor:
        # Every batch's ids as long as the generation may make them (Transformers' rule), so
        # that batches concatenate without -100 padding in between.
        if tensor.shape[-1] < max_length:
            return self._pad_tensors_to_max_len(tensor, max_length)
        if max_new_tokens is not None and tensor.shape[-1] < max_new_tokens + 1:
            return self._pad_tensors_to_max_len(tensor, max_new_tokens + 1)
        return tensor

    def _pad_tensors_to_max_len(self, tensor: torch.Tensor, max_length: int) -> torch.Tensor:
        """`tensor` right-padded to `max_length` with the tokenizer's pad id (its EOS id when it
        has no pad token), else the model config's pad_token_id."""
        tokenizer = self.processing_class
        if tokenizer is not None and hasattr(tokenizer, "pad_token_id"):
            pad = (
                tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id
            )
        else:
            pad = getattr(getattr(self.model, "config", None), "pad_token_id", None)
            if pad is None:
                raise ValueError(
                    "Pad_token_id must be set in the configuration of the model, in order to pad tensors"
                )
        padded = torch.full(
            (tensor.shape[0], max_length), pad, dtype=tensor.dtype, device=tensor.device
        )
        padded[:, : tensor.shape[-1]] = tensor
        return padded


__all__ = ["Seq2SeqTrainer"]
