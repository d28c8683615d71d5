"""The GPU path, checked in one command: exits 0 when every check passes, 1 when one fails.

    python bench/gpu_check.py                     # on a machine with a CUDA GPU
    python bench/gpu_check.py --device cpu --tiny # smoke: the same code paths on CPU, tiny model

Where there is no CUDA device (and no --device cpu) it prints "skipped: no CUDA device" and
exits 0. The checks:

1. throughput: steps/s and MFU of a GPT-2-small-sized model (124M parameters, 1,024 tokens a
   row) in bf16, with our Trainer and with transformers.Trainer on the same data and arguments.
   Passes when ours reaches --min-speed-ratio (0.8) of transformers' steps/s.
2. memory: 3 model_init trials in one Trainer; torch.cuda.memory_allocated after each trial is
   the same (nothing of an earlier trial is kept), and back to the baseline once the Trainer
   is gone.
3. auto_find_batch_size: a batch that cannot fit raises a real CUDA out-of-memory error; the
   trainer halves it until a step fits and finishes the run (CUDA only).
4. bitwise resume: with full_determinism (deterministic algorithms), 8 steps in one go and
   4 + 4 resumed from checkpoint-4 end with byte-identical weights (dropout on: the CUDA RNG
   state has to come back).

MFU = 6 x parameters x tokens per second / the device's peak bf16 FLOP/s (dense); the peak is
looked up by device name, or given with --peak-tflops. It prints figures; the only verdicts
are the four pass/fail lines.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `trainer` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Dense bf16 peak FLOP/s by device name (vendor datasheets; tensor cores, no sparsity).
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
}


@dataclass(frozen=True)
class Size:
    """The model and run sizes of one mode: full (GPT-2 small) or tiny (a CPU smoke run)."""

    n_layer: int
    n_embd: int
    n_head: int
    vocab: int
    seq: int
    batch: int
    warmup_steps: int
    timed_steps: int
    oom_batch: int  # a batch that cannot fit (full size only)


FULL = Size(12, 768, 12, 50257, 1024, 8, 5, 30, oom_batch=16384)
TINY = Size(2, 32, 2, 256, 32, 4, 2, 3, oom_batch=0)


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def gpt2(size: Size, dropout: float = 0.0) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=size.vocab,
        n_positions=size.seq,
        n_embd=size.n_embd,
        n_layer=size.n_layer,
        n_head=size.n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=0,
        eos_token_id=0,
        loss_type="ForCausalLM",
    )
    return GPT2LMHeadModel(config)


class RandomTokens:
    """Map-style rows of random token ids (labels = inputs), the same for both trainers."""

    def __init__(self, rows: int, size: Size, seed: int = 0) -> None:
        import torch

        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, size.vocab, (rows, size.seq), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


class StepClock:
    """Times optimizer steps after the warm-up ones (synchronising the device at each end)."""

    def __init__(self, warmup: int, cuda: bool) -> None:
        self.warmup, self.cuda = warmup, cuda
        self.started: float | None = None
        self.ended: float | None = None
        self.steps = 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
        now = time.perf_counter()
        if state.global_step == self.warmup:
            self.started = now
        elif state.global_step > self.warmup:
            self.ended, self.steps = now, state.global_step - self.warmup
        return control

    def steps_per_second(self) -> float:
        if self.started is None or self.ended is None or not self.steps:
            return 0.0
        return self.steps / (self.ended - self.started)


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    for name, tflops in PEAK_BF16_TFLOPS.items():  # the most specific names come first
        if name in device_name:
            return tflops * 1e12
    return None


# --- 1. throughput -------------------------------------------------------------------------------


def check_throughput(
    size: Size, cpu: bool, peak: float | None, min_ratio: float, judged: bool = True
) -> Check:
    import torch

    rows = size.batch * (size.warmup_steps + size.timed_steps)
    data = RandomTokens(rows, size)
    n_params = sum(p.numel() for p in gpt2(size).parameters())
    tokens_per_step = size.batch * size.seq
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, run in (("ours", _run_ours), ("transformers", _run_transformers)):
            clock = StepClock(size.warmup_steps, cuda=not cpu)
            run(size, data, clock, folder, cpu)
            results[label] = clock.steps_per_second()
            gc.collect()
            if not cpu:
                torch.cuda.empty_cache()
    lines = []
    for label, steps_s in results.items():
        flops = 6 * n_params * tokens_per_step * steps_s
        mfu = f"{100 * flops / peak:.1f}%" if peak else "- (unknown peak: --peak-tflops)"
        lines.append(
            f"{label}: {steps_s:.2f} steps/s, {tokens_per_step * steps_s:,.0f} tokens/s, MFU {mfu}"
        )
    ratio = results["ours"] / results["transformers"] if results["transformers"] else 0.0
    lines.append(f"ours / transformers = {ratio:.2f} (pass at >= {min_ratio})")
    print("\n".join("  " + line for line in lines))
    if not judged:  # a tiny model's few steps time the machine's noise, not the trainers
        return Check("throughput", True, f"ours/transformers {ratio:.2f} (tiny: not judged)")
    return Check("throughput", ratio >= min_ratio, f"ours/transformers {ratio:.2f}")


def _common_args(size: Size, folder: str, cpu: bool) -> dict[str, Any]:
    return dict(
        output_dir=folder,
        per_device_train_batch_size=size.batch,
        max_steps=size.warmup_steps + size.timed_steps,
        learning_rate=1e-4,
        bf16=True,
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=cpu,
        dataloader_drop_last=True,
        seed=0,
    )


def _run_ours(size: Size, data: Any, clock: StepClock, folder: str, cpu: bool) -> None:
    from trainer import Trainer, TrainingArguments

    args = TrainingArguments(**_common_args(size, f"{folder}/ours", cpu))
    Trainer(model_init=lambda: gpt2(size), args=args, train_dataset=data, callbacks=[clock]).train()


def _run_transformers(size: Size, data: Any, clock: StepClock, folder: str, cpu: bool) -> None:
    import transformers

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            return clock.on_step_end(args, state, control, **kwargs)

    args = transformers.TrainingArguments(**_common_args(size, f"{folder}/hf", cpu))
    transformers.Trainer(
        model_init=lambda: gpt2(size), args=args, train_dataset=data, callbacks=[Clock()]
    ).train()


# --- 2. memory between trials ------------------------------------------------------------------


def check_memory(size: Size, cpu: bool) -> Check:
    import torch

    from trainer import Trainer, TrainingArguments

    if cpu:
        allocated: Callable[[], int] = lambda: 0  # noqa: E731 - CPU has no allocator counter
    else:
        allocated = torch.cuda.memory_allocated
    gc.collect()
    baseline = allocated()
    held = []
    with tempfile.TemporaryDirectory() as folder:
        args = TrainingArguments(
            **{**_common_args(size, folder, cpu), "max_steps": 3, "bf16": not cpu}
        )
        trainer = Trainer(
            model_init=lambda trial=None: gpt2(size),
            args=args,
            train_dataset=RandomTokens(size.batch * 3, size),
        )
        for learning_rate in (1e-4, 3e-4, 1e-3):  # three trials of one model_init
            trainer.train(trial={"learning_rate": learning_rate})
            gc.collect()
            held.append(allocated() - baseline)
        del trainer
        gc.collect()
        after = allocated() - baseline
    mib = [f"{h / 2**20:.1f}" for h in held]
    print(
        f"  held after each trial: {', '.join(mib)} MiB; after the Trainer: {after / 2**20:.1f} MiB"
    )
    same = len(set(held)) == 1  # the last trial's model only, never an earlier one's too
    return Check(
        "memory between trials",
        same and after == 0,
        f"per trial {mib} MiB, {after} bytes left at the end"
        + (" (CPU: not measured)" if cpu else ""),
    )


# --- 3. auto_find_batch_size against a real OOM --------------------------------------------------


def check_auto_batch(size: Size, cpu: bool) -> Check:
    if cpu or not size.oom_batch:
        print("  skipped: a real out-of-memory error needs CUDA and the full-size model")
        return Check("auto_find_batch_size", True, "skipped on CPU")
    from trainer import Trainer, TrainingArguments

    with tempfile.TemporaryDirectory() as folder:
        args = TrainingArguments(
            **{
                **_common_args(size, folder, cpu),
                "per_device_train_batch_size": size.oom_batch,
                "max_steps": 2,
                "auto_find_batch_size": True,
            }
        )
        trainer = Trainer(
            model_init=lambda: gpt2(size),
            args=args,
            train_dataset=RandomTokens(size.oom_batch * 2, size),
        )
        output = trainer.train()
        fitted = trainer.state.train_batch_size
    print(f"  started at batch {size.oom_batch}, trained at {fitted}, {output.global_step} steps")
    passed = fitted < size.oom_batch and output.global_step == 2
    return Check("auto_find_batch_size", passed, f"{size.oom_batch} -> {fitted}")


# --- 4. bitwise resume --------------------------------------------------------------------------


def check_resume(size: Size, cpu: bool) -> Check:
    from trainer import Trainer, TrainingArguments

    def run(folder: str, resume: str | None) -> bytes:
        args = TrainingArguments(
            **{
                **_common_args(size, folder, cpu),
                "max_steps": 8,
                "save_strategy": "steps",
                "save_steps": 4,
                "full_determinism": True,
            }
        )
        Trainer(
            model_init=lambda: gpt2(size, dropout=0.1),
            args=args,
            train_dataset=RandomTokens(size.batch * 8, size),
        ).train(resume_from_checkpoint=resume)
        return (Path(folder) / "checkpoint-8" / "model.safetensors").read_bytes()

    with tempfile.TemporaryDirectory() as folder:
        whole = run(f"{folder}/whole", None)
        resumed = run(f"{folder}/resumed", f"{folder}/whole/checkpoint-4")
    same = whole == resumed
    print(f"  8 steps vs 4 + 4 resumed: weights {'identical' if same else 'DIFFER'}")
    return Check("bitwise resume", same, "byte-identical" if same else "weights differ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny model (a smoke run)")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense bf16 peak")
    parser.add_argument("--min-speed-ratio", type=float, default=0.8)
    args = parser.parse_args(argv)

    import torch

    cpu = args.device == "cpu"
    if not cpu and not torch.cuda.is_available():
        print("skipped: no CUDA device (run it where one is, or --device cpu --tiny to smoke-test)")
        return 0
    size = TINY if args.tiny else FULL
    name = "CPU" if cpu else torch.cuda.get_device_name()
    peak = None if cpu else peak_flops(name, args.peak_tflops)
    print(
        f"gpu_check on {name}, torch {torch.__version__}, {'tiny' if args.tiny else 'GPT-2 small'}"
    )
    checks = []
    for title, run in (
        (
            "1. throughput (bf16)",
            lambda: check_throughput(size, cpu, peak, args.min_speed_ratio, not args.tiny),
        ),
        ("2. memory released between 3 model_init trials", lambda: check_memory(size, cpu)),
        ("3. auto_find_batch_size against a real OOM", lambda: check_auto_batch(size, cpu)),
        ("4. bitwise resume, deterministic algorithms", lambda: check_resume(size, cpu)),
    ):
        print(title)
        try:
            checks.append(run())
        except Exception as error:  # a check that crashes is a failed check, the others still run
            checks.append(Check(title, False, f"{type(error).__name__}: {error}"))
            print(f"  error: {type(error).__name__}: {error}")
    print()
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
