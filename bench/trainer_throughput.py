"""Throughput of this project's Trainer vs transformers.Trainer vs a hand-written PyTorch loop.

The same tiny GPT-2 (2 layers, n_embd 64, vocab 256), the same byte-level data from
pydoc_data.topics, the same arguments (AdamW, linear schedule, grad clipping, logging every 50
steps, no evaluation or checkpoints), in alternating runs. Steps/s is measured between the
on_step_end of step WARMUP and of the last step, so setup does not count; each figure is the
median over the rounds, with the range over rounds beside it to show how noisy the machine was.

    python bench/trainer_throughput.py [--steps 300] [--rounds 3] [--threads 1]

This is a benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pydoc_data.topics import topics

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

import trainer as ours

BLOCK = 64
BATCH = 8
WARMUP = 10
LR = 5e-4


def corpus() -> torch.Tensor:
    data = torch.frombuffer(
        bytearray("\n".join(topics.values()).encode()), dtype=torch.uint8
    ).long()
    blocks = data[: len(data) // BLOCK * BLOCK].view(-1, BLOCK)
    return blocks[:4096]


class Rows(torch.utils.data.Dataset):
    """Per-sample dicts, as most user datasets are (used by all three contenders)."""

    def __init__(self, blocks: torch.Tensor) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.blocks[index]
        return {"input_ids": row, "labels": row}


class Columns(Rows):
    """The same data indexed a batch at a time (what `__getitems__` allows)."""

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = self.blocks[indices]
        return {"input_ids": rows, "labels": rows}


def model() -> GPT2LMHeadModel:
    transformers.utils.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=256,
        n_positions=BLOCK,
        n_embd=64,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
        loss_type="ForCausalLM",
    )
    return GPT2LMHeadModel(config)


class Clock(transformers.TrainerCallback):
    """Works with both trainers: same hook names and signature."""

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.steps = 0

    def tick(self, step: int) -> None:
        now = time.perf_counter()
        if step == WARMUP:
            self.start = now
        self.end = now
        self.steps = step - WARMUP

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        self.tick(state.global_step)

    def rate(self) -> float:
        return self.steps / (self.end - self.start)


COMMON = dict(
    max_steps=0,
    per_device_train_batch_size=BATCH,
    learning_rate=LR,
    lr_scheduler_type="linear",
    max_grad_norm=1.0,
    logging_steps=50,
    save_strategy="no",
    disable_tqdm=True,
    seed=0,
    optim="adamw_torch",
    weight_decay=0.0,
)


def run_ours(steps: int, dataset: torch.utils.data.Dataset) -> float:
    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        args = ours.TrainingArguments(output_dir=out, **{**COMMON, "max_steps": steps})
        ours.Trainer(model=model(), args=args, train_dataset=dataset, callbacks=[clock]).train()
    return clock.rate()


def run_transformers(steps: int, dataset: torch.utils.data.Dataset) -> float:
    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, report_to="none", use_cpu=True, **{**COMMON, "max_steps": steps}
        )
        transformers.Trainer(
            model=model(), args=args, train_dataset=dataset, callbacks=[clock]
        ).train()
    return clock.rate()


def run_hand_loop(steps: int, dataset: torch.utils.data.Dataset) -> float:
    net = model()
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.0)
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, 0, steps)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
    clock = Clock()
    step = 0
    while step < steps:
        for batch in loader:
            loss = net(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 50 == 0:
                loss.item()  # what logging costs
            clock.tick(step)
            if step == steps:
                break
    return clock.rate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    # One thread by default: on a shared machine, idle-spinning OpenMP threads make timings swing
    # far more than any difference between the contenders.
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    blocks = corpus()
    contenders = {
        "trainer.Trainer": lambda: run_ours(options.steps, Rows(blocks)),
        "transformers.Trainer": lambda: run_transformers(options.steps, Rows(blocks)),
        "hand-written loop": lambda: run_hand_loop(options.steps, Rows(blocks)),
        "trainer.Trainer, __getitems__ data": lambda: run_ours(options.steps, Columns(blocks)),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(options.rounds):  # alternate so that drift in machine speed hits all alike
        for name, run in contenders.items():
            rates[name].append(run())
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"tiny GPT-2 (2 layers, n_embd 64), batch {BATCH} x {BLOCK} tokens, {options.steps} steps, "
        f"median of {options.rounds} alternating rounds, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    print(
        f"| {'contender':<36} | steps/s | range over rounds | vs transformers.Trainer | vs hand loop |"
    )
    print(f"|{'-' * 38}|---------|-------------------|-------------------------|--------------|")
    for name, values in rates.items():
        spread = f"{min(values):.1f} - {max(values):.1f}"
        versus_hf = median[name] / median["transformers.Trainer"]
        versus_hand = median[name] / median["hand-written loop"]
        print(
            f"| {name:<36} | {median[name]:7.2f} | {spread:>17} | {versus_hf:22.3f}x "
            f"| {versus_hand:11.3f}x |"
        )


if __name__ == "__main__":
    main()
