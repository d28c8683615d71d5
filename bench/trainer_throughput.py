"""Throughput of this project's Trainer vs transformers.Trainer vs a hand-written PyTorch loop.

The same tiny GPT-2 (2 layers, n_embd 64, vocab 256), the same byte-level data from
pydoc_data.topics (batch 16 x 128 tokens), the same arguments (AdamW, linear schedule, grad
clipping, logging every 50 steps, no evaluation or checkpoints). What is timed is the whole
`train()` call of a model built beforehand (for the hand loop: from building the optimizer to
the last step), so every fixed cost a short trial pays counts: setup, a gc.collect(), the
first steps. Steps/s = steps / that time. Each figure is the median over interleaved rounds
(every contender once per round, so drift in machine speed hits all alike), with the range.
The load average is printed before and after: only figures from a quiet machine count.

    python bench/trainer_throughput.py [--steps 150,300] [--rounds 3] [--threads 1,2]

This is a benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from pydoc_data.topics import topics

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

if __package__ in (None, ""):  # run as a script: make `bench` and `trainer` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trainer as ours  # noqa: E402
from bench._common import load_line, median_range  # noqa: E402

BLOCK = 128
BATCH = 16
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
    net = model()
    with tempfile.TemporaryDirectory() as out:
        args = ours.TrainingArguments(output_dir=out, **{**COMMON, "max_steps": steps})
        trainer = ours.Trainer(model=net, args=args, train_dataset=dataset)
        start = time.perf_counter()
        trainer.train()
        return steps / (time.perf_counter() - start)


def run_transformers(steps: int, dataset: torch.utils.data.Dataset) -> float:
    net = model()
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(
            output_dir=out, report_to="none", use_cpu=True, **{**COMMON, "max_steps": steps}
        )
        trainer = transformers.Trainer(model=net, args=args, train_dataset=dataset)
        trainer.remove_callback(transformers.PrinterCallback)  # no log lines on the terminal
        start = time.perf_counter()
        trainer.train()
        return steps / (time.perf_counter() - start)


def run_hand_loop(steps: int, dataset: torch.utils.data.Dataset) -> float:
    net = model()
    start = time.perf_counter()
    net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=0.0)
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, 0, steps)
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
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
            if step == steps:
                break
    return steps / (time.perf_counter() - start)


def integers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=integers, default=[150, 300])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=integers, default=[1, 2])
    options = parser.parse_args()
    blocks = corpus()
    print(f"before: {load_line()}", flush=True)
    for threads in options.threads:
        torch.set_num_threads(threads)
        for steps in options.steps:
            report(threads, steps, options.rounds, blocks)
    print(f"after: {load_line()}")


def report(threads: int, steps: int, rounds: int, blocks: torch.Tensor) -> None:
    contenders = {
        "trainer.Trainer": lambda: run_ours(steps, Rows(blocks)),
        "transformers.Trainer": lambda: run_transformers(steps, Rows(blocks)),
        "hand-written loop": lambda: run_hand_loop(steps, Rows(blocks)),
        "trainer.Trainer, __getitems__ data": lambda: run_ours(steps, Columns(blocks)),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):  # interleaved: every contender once per round
        for name, run in contenders.items():
            rates[name].append(run())
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"\ntiny GPT-2 (2 layers, n_embd 64), batch {BATCH} x {BLOCK} tokens, whole train() of "
        f"{steps} steps, {threads} thread(s), torch {torch.__version__}; {load_line()}"
    )
    print(
        "| contender | steps/s: median (range, rounds) | vs transformers.Trainer | vs hand loop |"
    )
    print("|---|---|---|---|")
    for name, values in rates.items():
        versus_hf = median[name] / median["transformers.Trainer"]
        versus_hand = median[name] / median["hand-written loop"]
        print(f"| {name} | {median_range(values)} | {versus_hf:.3f}x | {versus_hand:.3f}x |")
    print(
        f"targets: >= 1.05x transformers.Trainer, >= 0.97x hand loop -> "
        f"{'MET' if median['trainer.Trainer'] >= 1.05 * median['transformers.Trainer'] and median['trainer.Trainer'] >= 0.97 * median['hand-written loop'] else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
