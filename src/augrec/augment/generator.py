"""The generator: a causal transformer over *reversed* histories that writes pseudo-prior items.

ASReP (Liu et al., SIGIR 2021) pre-trains a transformer on reversed sequences so it can
predict what a user bought *before* their first known item, then prepends such items to
short histories. We reuse the SASRec network for it: the same blocks, trained by maximum
likelihood on training interactions only (the loop in `training/loop.py`), then optionally
refined adversarially (`augment/adversarial.py`).

Optionally the generator is conditioned on item text (`TextConditioning`): each item's
embedding is its id embedding plus a learned projection of its whitened title vector
(`augrec.text.embed`), so an item with few interactions still has a representation that
places it near items described alike. Titles are public catalog data, not user data, so the
projection costs nothing against the generator's privacy budget.

Shapes: B batch, L length, D hidden, K text components, N n_items + 1 (0 = padding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from augrec.models.sasrec import SASRecConfig, SASRecNet, pad_left
from augrec.training.loop import FitResult, train_sequences


class TextConditioning(BaseModel):
    """Condition the generator's item embeddings on item titles (when the catalog has them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="fuse projected title vectors into item embeddings")
    components: int = Field(64, ge=1, description="whitened principal components of the titles")


def reverse_all(seqs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each history read backwards: the generator's training data."""
    return [np.ascontiguousarray(s[::-1]) for s in seqs]


def encoded_titles(items: Any, item_ids: np.ndarray) -> list[str] | None:
    """Title per encoded item id (row 0, padding, is ""), or None when no item has one.

    `items` is a dataset's items table (`Dataset.items`), `item_ids` a split's `item_ids`.
    """
    if "title" not in getattr(items, "columns", ()):
        return None
    by_id = items.drop_duplicates("item_id").set_index("item_id")["title"]
    titles = by_id.reindex(item_ids[1:]).fillna("").astype(str).tolist()
    if not any(t.strip() for t in titles):
        return None
    return ["", *titles]


def text_features(vectors: np.ndarray, components: int) -> np.ndarray:
    """Whitened principal components of item text vectors: [N, dim] -> [N, k] float32.

    Rows that are all zero (padding, items without a title) stay zero; the others are
    whitened by `augrec.text.reduce.whiten` (the SASRec side's reduction) at unit variance,
    so no single direction of the encoder dominates the generator's learned projection.
    """
    from augrec.text.reduce import whiten

    vectors = np.asarray(vectors, dtype=np.float64)
    has = np.linalg.norm(vectors, axis=1) > 0
    out = np.zeros((len(vectors), components), dtype=np.float32)
    if has.sum() >= 2:
        out[has] = whiten(vectors[has], components, scale=1.0)
    return out


def item_text_features(titles: list[str], components: int, cache_dir: Any = None) -> np.ndarray:
    """`text_features` of the packaged encoder's title embeddings (cached by content)."""
    from augrec.text.embed import embed_texts

    return text_features(embed_texts(titles, cache_dir=cache_dir), components)


class TextConditionedNet(SASRecNet):
    """SASRecNet whose item table adds a learned projection of fixed item text features.

    SASRecNet's own `item_table` adds `text_proj(item_text)`; this net only supplies them,
    K-wide features through a freshly initialised K -> D projection.
    """

    def __init__(self, n_items: int, cfg: SASRecConfig, item_text: np.ndarray):
        super().__init__(n_items, cfg, None)
        text = torch.as_tensor(np.asarray(item_text, dtype=np.float32))
        if text.shape[0] != n_items + 1:
            raise ValueError(
                f"item_text: expected {n_items + 1} rows (n_items + padding), got {text.shape[0]}"
            )
        del self.item_text  # SASRecNet's "no text" placeholder, replaced by the buffer
        self.register_buffer("item_text", text, persistent=True)  # [N, K]
        self.text_proj = nn.Linear(text.shape[1], cfg.hidden, bias=False)
        nn.init.normal_(self.text_proj.weight, std=0.02)


class ReverseGenerator:
    """Samples items that plausibly came before a history."""

    def __init__(
        self,
        n_items: int,
        cfg: SASRecConfig,
        seed: int = 0,
        item_text: np.ndarray | None = None,
    ):
        torch.manual_seed(seed)
        self.cfg = cfg
        self.seed = seed
        self.n_items = n_items
        if item_text is None:
            self.net: SASRecNet = SASRecNet(n_items, cfg, None).to(cfg.device)
        else:
            self.net = TextConditionedNet(n_items, cfg, item_text).to(cfg.device)

    def fit_mle(self, train: Sequence[np.ndarray], reporter: Any = None) -> FitResult:
        """Maximum likelihood on reversed training histories (no validation: fixed epochs)."""
        return train_sequences(
            self.net, reverse_all(train), self.cfg, seed=self.seed, reporter=reporter
        )

    def step_logits(self, reversed_ctx: torch.Tensor) -> torch.Tensor:
        """Next pseudo-prior item logits [B, N] for left-padded reversed contexts [B, L]."""
        table = self.net.item_table()
        h = self.net(reversed_ctx[:, -self.cfg.max_len :].to(self.cfg.device), table)[:, -1]
        logits = (h @ table.T).float().cpu()
        logits[:, 0] = -torch.inf
        return logits

    @torch.no_grad()
    def sample_prefixes(
        self,
        histories: Sequence[np.ndarray],
        lengths: Sequence[int],
        temperature: float = 1.0,
        banned: Sequence[np.ndarray] | None = None,
        generator: torch.Generator | None = None,
    ) -> list[np.ndarray]:
        """For each history, sample `lengths[i]` items that precede it, oldest first.

        Items in the history, items already sampled for it, and `banned[i]` are never drawn:
        a user does not rebuy, and the caller can rule out anything it must never emit.
        """
        self.net.eval()
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in histories]
        todo = [i for i, n in enumerate(lengths) if n > 0]
        # Batch by requested length so every row in a batch stops together.
        for n_steps in sorted({int(lengths[i]) for i in todo}):
            rows = [i for i in todo if int(lengths[i]) == n_steps]
            for start in range(0, len(rows), 256):
                batch = rows[start : start + 256]
                ctx = [histories[i][::-1] for i in batch]
                masks = torch.zeros(len(batch), self.n_items + 1, dtype=torch.bool)
                for r, i in enumerate(batch):
                    masks[r, histories[i]] = True
                    if banned is not None and len(banned[i]):
                        masks[r, banned[i]] = True
                drawn = []
                for _ in range(n_steps):
                    seq = pad_left(ctx, self.cfg.max_len)
                    logits = self.step_logits(seq) / max(temperature, 1e-6)
                    logits = logits.masked_fill(masks, -torch.inf)
                    nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
                    masks[torch.arange(len(batch)), nxt] = True
                    drawn.append(nxt.numpy())
                    ctx = [np.append(c, x) for c, x in zip(ctx, nxt.numpy(), strict=True)]
                sampled = np.stack(drawn, axis=1)  # [b, n_steps], newest-to-oldest order
                for r, i in enumerate(batch):
                    out[i] = sampled[r, ::-1].astype(np.int64)  # oldest first
        return out

    @torch.no_grad()
    def sample_virtual(
        self,
        seeds: np.ndarray,
        length: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> list[np.ndarray]:
        """Virtual users: each ends with a seed item, preceded by `length - 1` sampled items."""
        seeds = np.asarray(seeds, dtype=np.int64)
        prefixes = self.sample_prefixes(
            [np.array([s]) for s in seeds],
            [length - 1] * len(seeds),
            temperature,
            generator=generator,
        )
        return [np.append(p, s) for p, s in zip(prefixes, seeds, strict=True)]

    @torch.no_grad()
    def log_likelihood(self, seqs: Sequence[np.ndarray], batch_size: int = 512) -> np.ndarray:
        """Mean log-probability per item of each (forward) sequence under the generator.

        The membership-inference attack's score: a generator that memorised its training
        users gives them visibly higher likelihood than users it never saw.
        """
        self.net.eval()
        out = np.zeros(len(seqs), dtype=np.float64)
        rev = reverse_all(seqs)
        for start in range(0, len(rev), batch_size):
            chunk = rev[start : start + batch_size]
            inputs = pad_left([s[:-1] for s in chunk], self.cfg.max_len).to(self.cfg.device)
            targets = pad_left([s[1:] for s in chunk], self.cfg.max_len).to(self.cfg.device)
            table = self.net.item_table()
            logp = F.log_softmax(self.net(inputs, table) @ table.T, dim=-1)
            tok = logp.gather(2, targets[..., None])[..., 0]
            keep = targets > 0
            sums = (tok * keep).sum(1)
            counts = keep.sum(1).clamp(min=1)
            out[start : start + len(chunk)] = (sums / counts).cpu().numpy()
        return out

    def state_dict(self) -> dict[str, Any]:
        """Weights, for checkpoints and selection."""
        return {k: v.detach().clone() for k, v in self.net.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore weights."""
        self.net.load_state_dict(state)


# ---- distributed maximum likelihood (Ray Train) --------------------------------------------


class GeneratorJob(BaseModel):
    """What `fit_worker` needs beyond the launcher's `JobSpec` (its `config`)."""

    model_config = ConfigDict(extra="forbid")

    split: dict[str, Any]  # SplitConfig values
    params: dict[str, Any]  # SASRecConfig values of the generator
    holdout_share: float = 0.0


def fit_worker(spec: Any, ctx: Any) -> None:
    """Ray Train worker entry: maximum likelihood on member users' reversed histories.

    `spec` is the launcher's `JobSpec` (dataset URI, seed, a `GeneratorJob` as `config`);
    `ctx` its `WorkerContext`. Every worker rebuilds the split and the member mask from the
    same data and seed.
    """
    from augrec.config import SplitConfig
    from augrec.data.loaders import load_dataset
    from augrec.data.splits import make_split, member_mask
    from augrec.training.loop import LossModule
    from augrec.training.progress import ConsoleReporter

    job = GeneratorJob(**spec.config)
    split_cfg = SplitConfig(**job.split)
    ds = load_dataset(ctx.local(spec.data))
    split = make_split(ds, split_cfg.kind, split_cfg.test_cutoff, split_cfg.valid_cutoff)
    cfg = SASRecConfig(**{**job.params, "device": str(ctx.device)})
    gen = ReverseGenerator(split.n_items, cfg, seed=spec.seed)
    members = member_mask(len(split.train), job.holdout_share, spec.seed)
    sequences = reverse_all([s for s, m in zip(split.train, members, strict=True) if m])
    net = gen.net.to(ctx.device)
    reporter = ctx.reporter
    if ctx.rank == 0:
        prefix = f"[ray generator rank 0/{ctx.world_size}] "
        reporter = reporter.also(ConsoleReporter(cfg.epochs, prefix=prefix))
    train_sequences(
        net,
        sequences,
        cfg,
        seed=spec.seed,
        reporter=reporter,
        resume=ctx.resume,
        rank=ctx.rank,
        world_size=ctx.world_size,
        loss_module=ctx.prepare_model(LossModule(net, cfg)),
    )


def fit_with_ray(
    gen: ReverseGenerator, data: Any, split: Any, ray_cfg: Any, holdout_share: float
) -> dict[str, Any]:
    """Maximum-likelihood pre-training of `gen` on Ray Train workers (`fit_worker`).

    `data` is the dataset (a URI, or a local path `ray_train.stage` uploads when
    `ray_cfg.staging` is set); `split` a `SplitConfig`; `ray_cfg` a `RayConfig`.
    """
    from augrec.training import ray_train

    spec = ray_train.JobSpec(
        entry="augrec.augment.generator:fit_worker",
        data=ray_train.stage(data, ray_cfg),
        seed=gen.seed,
        config=GeneratorJob(
            split=split.model_dump(),
            params=gen.cfg.model_dump(exclude={"device"}),
            holdout_share=holdout_share,
        ).model_dump(),
    )
    state = ray_train.run_trainer(spec, ray_cfg)
    gen.net.load_state_dict(state["net"])
    return {
        "epochs_run": state["epoch"],
        "num_workers": ray_cfg.num_workers,
        "data_uri": spec.data,
        "seconds_per_epoch": round(state["elapsed"] / max(state["epoch"], 1), 3),
    }
