"""A Transformers user's causal LM pushed to the Hub: checkpoints to `last-checkpoint/` while
training (hub_strategy="checkpoint"), then `trainer.push_to_hub()` with model-card tags.

Runs unchanged through transformers.Trainer and through ours; only the import line differs.
HF_ENDPOINT names the Hub (a local one in the tests).
"""

import sys

import torch
from transformers import Trainer, TrainingArguments  # the one import
from transformers.models.gpt2 import GPT2Config, GPT2LMHeadModel

OUTPUT_DIR, TOKEN = sys.argv[1], "hf_one_import_secret"


class Tokens(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.ids = torch.randint(1, 64, (rows, 16), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2))
args = TrainingArguments(
    output_dir=OUTPUT_DIR,
    max_steps=4,
    save_steps=2,
    per_device_train_batch_size=4,
    report_to="none",
    disable_tqdm=True,
    use_cpu=True,
    push_to_hub=True,
    hub_model_id="tiny-lm",
    hub_strategy="checkpoint",
    hub_token=TOKEN,
)
trainer = Trainer(model=model, args=args, train_dataset=Tokens(32))
trainer.train()
trainer.push_to_hub(tags=["tiny"], finetuned_from="none/base")
print("PUSHED", args)
