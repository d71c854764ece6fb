"""The seed library's motivational example, ported to mtcore (multitask-transformers README).

What changed from the seed's code: the import lines (mtcore's modules, ``torch.optim.AdamW``
instead of the removed ``transformers.AdamW``) and ``load_dataset(...)``, pointed at the
official Russian SuperGLUE files instead of the hub's script-based ``russian_super_glue``.
Everything from ``cfg = ...`` to the training loop is the seed's code.

    python examples/seed_port.py [ENCODER_PATH] [RSG_DIR]

ENCODER_PATH defaults to DeepPavlov/rubert-base-cased (downloaded from the hub if online);
RSG_DIR holds the unpacked official files: DaNetQA/{train,val,test}.jsonl, TERRa/{train,val,test}.jsonl.
"""

import sys

import torch
from datasets import load_dataset
from tqdm.auto import tqdm
from torch.optim import AdamW
from transformers import get_scheduler

from mtcore.seed.classification import SequenceClassificationTask
from mtcore.seed.dataloaders import MultitaskBatchSampler
from mtcore.seed.models import MultitaskModel
from mtcore.seed.preprocessing import Preprocessor, NLIPreprocess
from mt_russian_superglue import preprocess_danetqa
from mtcore.seed.tasks import Tasks
from mtcore.seed.tokenizers import TokenizerConfig

# load_dataset(rsg, "danetqa") pointed at local files in the official layout
rsg = sys.argv[2] if len(sys.argv) > 2 else "RussianSuperGLUE"


def rsg_files(folder):
    return {split: f"{rsg}/{folder}/{name}.jsonl" for split, name in [("train", "train"), ("validation", "val"), ("test", "test")]}


# ---- the seed's example, unchanged from here on (but for the encoder path's default) ----
cfg = TokenizerConfig(max_length=512)
encoder_path = sys.argv[1] if len(sys.argv) > 1 else "DeepPavlov/rubert-base-cased"
tasks = Tasks([
  SequenceClassificationTask(
    name="danetqa",
    dataset_dict=load_dataset("json", data_files=rsg_files("DaNetQA")),
    preprocessor=Preprocessor([preprocess_danetqa]),
    tokenizer_config=cfg,
  ),
  SequenceClassificationTask(
    name="terra",
    dataset_dict=load_dataset("json", data_files=rsg_files("TERRa")),
    preprocessor=Preprocessor([NLIPreprocess()]),
    tokenizer_config=cfg,
  )
], encoder_path)

train_sampler = MultitaskBatchSampler(tasks.data, "train", batch_size=12)

model = MultitaskModel(encoder_path, tasks.heads)

optimizer = AdamW(model.parameters(), lr=5e-5)
num_epochs = 1
num_training_steps = num_epochs * len(train_sampler)
lr_scheduler = get_scheduler("linear", optimizer=optimizer, num_warmup_steps=0, num_training_steps=num_training_steps)

device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
tasks.model.to(device)
tasks.model.train()

progress_bar = tqdm(range(num_training_steps))

for epoch_num in range(num_epochs):
  for batch in train_sampler:
    batch.data.to(device)
    outputs = model.forward(batch.name, **batch.data)
    loss = outputs.loss
    print(f"Training loss: {loss} on task {batch.name}")
    loss.backward()

    optimizer.step()
    lr_scheduler.step()
    optimizer.zero_grad()
    progress_bar.update(1)

# ---- not in the seed: a last line to check the run by ----
progress_bar.close()
print(f"finished {progress_bar.n} of {num_training_steps} steps")
