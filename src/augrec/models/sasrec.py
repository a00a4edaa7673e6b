"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Deviations from the paper, each for a measured reason:
- Trained with full softmax cross-entropy over every item (or sampled softmax with many
  negatives) instead of one sampled negative with binary cross-entropy. The loss matters more
  than the architecture: CE-trained SASRec beats BERT4Rec (Klenitskiy & Vasilev, RecSys 2023;
  Petrov & Macdonald, gSASRec 2023).
- Pre-LayerNorm blocks with GELU (nanoGPT-style) for stable training at high dropout.
- Optional item side information: the mean of an item's attribute embeddings is added to its
  id embedding (input and output share the sum, so attributes help rare items at both ends).
- Optional item text (`text`): title vectors from a packaged sentence encoder, PCA-whitened to
  the hidden size (`augrec.text.reduce`), either initialise the id embeddings (`init`) or are
  added through a learned projection shared by all items (`fuse`), so tail items whose id
  embedding barely trains still get a representation from their title.
- Recipes for training on synthetic data (docs/augmentation.md, "Recipes"): a loss weight on
  synthetic targets, two-stage pre-training on real + synthetic then fine-tuning on real only,
  and APR-style adversarial perturbation of item embeddings (He et al., SIGIR 2018).

Shapes: B batch, L max_len, D hidden, N n_items + 1 (index 0 = padding).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from augrec.data.splits import Split
from augrec.models.base import ModelConfig, Recommender, Reporter, Validator

log = logging.getLogger(__name__)


class SASRecConfig(ModelConfig):
    """Architecture and training settings; defaults are the Amazon Beauty settings we measured."""

    max_len: int = Field(50, ge=2, description="longest history the model reads")
    hidden: int = Field(64, ge=8)
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.5, ge=0, lt=1)
    use_attributes: bool = Field(True, description="add item attribute embeddings when known")
    loss: Literal["ce", "sampled"] = "ce"
    negatives: int = Field(1024, ge=1, description="sampled softmax: shared negatives per batch")
    epochs: int = Field(200, ge=0)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    eval_every: int = Field(2, ge=1, description="epochs between validation runs")
    patience: int = Field(5, ge=1, description="validation runs without improvement to stop")
    time_budget_s: float | None = Field(None, gt=0, description="stop training after this long")
    device: str = Field("cpu", description="cpu or cuda")
    # Recipes; the defaults are plain SASRec.
    synthetic_weight: float = Field(
        1.0,
        ge=0,
        description="loss weight of synthetic targets (1: like real ones; 0: synthetic items "
        "are only context). The loss is the weighted mean over targets",
    )
    finetune: bool = Field(
        False,
        description="two stages: train on real + synthetic, then fine-tune on real only from "
        "the best pre-training checkpoint; each stage stops early on validation NDCG@10",
    )
    finetune_epochs: int | None = Field(
        None, ge=0, description="most fine-tuning epochs (default: `epochs`)"
    )
    finetune_lr: float | None = Field(None, gt=0, description="fine-tuning lr (default: `lr`)")
    adv_eps: float = Field(
        0.0,
        ge=0,
        description="adversarial training: L2 norm of the loss-increasing perturbation added to "
        "each item embedding, as a fraction of that embedding's norm (0: off)",
    )
    adv_weight: float = Field(1.0, ge=0, description="weight of the perturbed loss")
    text: Literal["off", "init", "fuse"] = Field(
        "off",
        description="item title vectors: initialise the id embeddings, or fuse them through a "
        "learned projection; a catalog without titles trains without them",
    )


class Block(nn.Module):
    """Pre-LN transformer block with causal self-attention."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """X [B, L, D], mask [B, 1, L, L] True where attention is allowed -> [B, L, D].

        `last_only`: only the last position's output, [B, 1, D] (every position still serves
        as key and value): what inference needs from the top block, at about half its cost.
        """
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        if last_only:
            q, mask, x = q[:, -1:], mask[:, :, -1:], x[:, -1:]
        nq = q.shape[1]
        q = q.reshape(b, nq, self.heads, d // self.heads).transpose(1, 2)
        k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0
        )  # [B, H, nq, D/H]
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, nq, d)))
        return x + self.drop(self.mlp(self.ln2(x)))


class SASRecNet(nn.Module):
    """Item + position embeddings -> causal blocks -> hidden state per position."""

    def __init__(
        self,
        n_items: int,
        cfg: SASRecConfig,
        item_attributes: np.ndarray | None,
        item_text: np.ndarray | None = None,
    ):
        super().__init__()
        d = cfg.hidden
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos_emb = nn.Embedding(cfg.max_len, d)
        if item_attributes is not None:
            attrs = torch.as_tensor(item_attributes, dtype=torch.long)
            self.register_buffer("item_attrs", attrs, persistent=True)  # [N, A]
            self.attr_emb = nn.Embedding(int(attrs.max()) + 1, d, padding_idx=0)
        else:
            self.item_attrs = None
            self.attr_emb = None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(d)
        self.apply(self._init)
        # item_text [N, D]: whitened title vectors at the embeddings' scale, 0 rows = no title.
        self.text_proj: nn.Linear | None = None
        if item_text is not None and cfg.text == "fuse":
            self.register_buffer("item_text", torch.as_tensor(item_text, dtype=torch.float32))
            self.text_proj = nn.Linear(d, d, bias=False)
            nn.init.eye_(self.text_proj.weight)  # starts as the text vector itself
        else:
            self.item_text: torch.Tensor | None = None
        if item_text is not None and cfg.text == "init":
            titled = torch.as_tensor(np.abs(item_text).sum(1) > 0)
            with torch.no_grad():
                self.item_emb.weight[titled] = torch.as_tensor(item_text, dtype=torch.float32)[
                    titled
                ]

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()

    def item_table(self) -> torch.Tensor:
        """Embedding of every item [N, D]: id embedding plus mean attribute embedding."""
        table = self.item_emb.weight
        if self.attr_emb is not None and self.item_attrs is not None:
            a = self.attr_emb(self.item_attrs)  # [N, A, D]
            n = (self.item_attrs > 0).sum(1, keepdim=True).clamp(min=1)
            table = table + a.sum(1) / n
        if self.text_proj is not None and self.item_text is not None:
            table = table + self.text_proj(self.item_text)
        return table

    def forward(
        self, seq: torch.Tensor, table: torch.Tensor | None = None, last_only: bool = False
    ) -> torch.Tensor:
        """Seq [B, L] left-padded item ids -> hidden [B, L, D] (`last_only`: [B, 1, D])."""
        table = self.item_table() if table is None else table
        b, n = seq.shape
        x = table[seq] * math.sqrt(table.shape[1])
        x = x + self.pos_emb.weight[-n:][None]  # the last position is always max_len-1
        x = self.drop(x)
        pad = seq == 0
        causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
        # Keys that are padding are hidden, but every query may see itself so that rows made
        # only of padding stay finite (their outputs are never used).
        mask = causal[None] & ~pad[:, None, :]
        mask = mask | torch.eye(n, dtype=torch.bool, device=seq.device)[None]
        mask = mask[:, None]  # [B, 1, L, L]
        for i, block in enumerate(self.blocks):
            x = block(x, mask, last_only=last_only and i == len(self.blocks) - 1)
        return self.ln_f(x)


class _LastHidden(nn.Module):
    """Seq [B, L] -> the hidden state after each history's last item, [B, D] (inference)."""

    def __init__(self, net: SASRecNet):
        super().__init__()
        self.net = net

    def forward(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return last_hidden(self.net, seq, table)


def last_hidden(net: SASRecNet, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """The hidden state after each left-padded history's last item, [B, D]."""
    return net(seq, table, last_only=True)[:, -1]


def pad_left(histories: Sequence[np.ndarray], max_len: int, dtype: Any = np.int64) -> torch.Tensor:
    """Stack histories into [B, L] keeping the last `max_len` items, padding on the left."""
    n = min(max_len, max((len(h) for h in histories), default=1)) or 1
    out = np.zeros((len(histories), n), dtype=dtype)
    for row, h in enumerate(histories):
        h = h[-n:]
        if len(h):
            out[row, n - len(h) :] = h
    return torch.from_numpy(out)


# What one more forward call costs, in padded positions: the fixed per-call work (~40 torch
# ops of dispatch) against the per-position work of hidden 64-128 on one CPU thread.
CALL_COST_POSITIONS = 32


def length_groups(lengths: Sequence[int], call_cost: int = CALL_COST_POSITIONS) -> list[np.ndarray]:
    """Split a batch into groups of similar length that minimise the work of running them.

    Each group is padded to its longest history; running it costs `call_cost` plus its padded
    positions (group size x longest). Groups are runs of the histories sorted by length; the
    cheapest split is found exactly by dynamic programming over the B sorted lengths (B^2/2
    steps: batches are tens of histories). Returns the row indices of each group.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    ls = [max(int(lengths[i]), 1) for i in order]
    n = len(ls)
    best = [0.0] + [np.inf] * n  # best[i]: cheapest way to run the i shortest histories
    cut = [0] * (n + 1)
    for i in range(1, n + 1):
        for j in range(i):
            cost = best[j] + call_cost + (i - j) * ls[i - 1]
            if cost < best[i]:
                best[i], cut[i] = cost, j
    groups, i = [], n
    while i > 0:
        groups.append(order[cut[i] : i])
        i = cut[i]
    return groups[::-1]


def sequence_loss(
    net: SASRecNet,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    cfg: SASRecConfig,
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
    table: torch.Tensor | None = None,
) -> torch.Tensor:
    """Next-item loss at every non-padding position. inputs/targets [B, L].

    weights [B, L]: each target's loss weight; the loss is then sum(w * loss) / sum(w) (0 when
    every weight is 0). table: an item table to use instead of the network's own (the
    adversarially perturbed one).
    """
    table = net.item_table() if table is None else table
    hidden = net(inputs, table)  # [B, L, D]
    keep = targets > 0
    h = hidden[keep]  # [T, D]
    y = targets[keep]  # [T]
    if cfg.loss == "ce":
        logits = h @ table.T  # [T, N]
        logits[:, 0] = -torch.inf
        per_target = F.cross_entropy(logits, y, reduction="none")
    else:
        # Sampled softmax: the positive against shared uniform negatives; accidental hits masked.
        neg = torch.randint(1, net.n_items + 1, (cfg.negatives,), generator=generator)
        neg = neg.to(h.device)
        pos_logit = (h * table[y]).sum(-1, keepdim=True)  # [T, 1]
        neg_logit = h @ table[neg].T  # [T, K]
        neg_logit = neg_logit.masked_fill(neg[None, :] == y[:, None], -torch.inf)
        logits = torch.cat([pos_logit, neg_logit], dim=1)
        zeros = torch.zeros(len(y), dtype=torch.long, device=h.device)
        per_target = F.cross_entropy(logits, zeros, reduction="none")
    if weights is None:
        return per_target.mean()
    w = weights[keep].to(per_target.dtype)  # [T]
    total = w.sum()
    return (per_target * w).sum() / total.clamp(min=torch.finfo(w.dtype).tiny)


def adversarial_loss(
    net: SASRecNet,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    cfg: SASRecConfig,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """APR (He et al., SIGIR 2018): clean loss + adv_weight * loss at the worst nearby table.

    The perturbation of each item embedding points along the clean loss's gradient with
    respect to it (the fast-gradient approximation of the loss-increasing direction) and is a
    constant for the backward pass, as in APR and FGSM. Deviation: its L2 norm is `adv_eps`
    times the embedding's own norm, not `adv_eps` itself. SASRec's embeddings start at norm
    ~0.02·sqrt(D) and grow while training, so an absolute radius that suits one width and one
    epoch swamps another (an absolute 0.5 took a 16-wide model's NDCG@10 from 0.10 to 0.01 on
    demo data); a relative one means the same at every size.
    """
    table = net.item_table()  # [N, D]
    clean = sequence_loss(net, inputs, targets, cfg, weights=weights, table=table)
    if cfg.adv_eps <= 0:
        return clean
    (grad,) = torch.autograd.grad(clean, table, retain_graph=True)
    radius = cfg.adv_eps * table.detach().norm(dim=1, keepdim=True)  # [N, 1]
    delta = radius * F.normalize(grad.detach(), dim=1)
    delta[0] = 0.0  # padding is no item
    worst = sequence_loss(net, inputs, targets, cfg, weights=weights, table=table + delta)
    return clean + cfg.adv_weight * worst


class SASRec(Recommender):
    """The sequential recommender behind the shared interface."""

    name = "sasrec"
    Config = SASRecConfig

    def __init__(self, config: SASRecConfig, seed: int = 0):
        super().__init__(config, seed)
        self.net: SASRecNet | None = None
        self.item_attributes: np.ndarray | None = None
        self.fit_info: dict[str, Any] = {}
        self.fit_history: list[dict[str, Any]] = []  # per-epoch loss, validation, timings
        # The item table of a loaded (frozen) model. Recomputing it costs ~30 ms per call with
        # attribute embeddings on 12k items, 20x the rest of a one-user request.
        self._frozen_table: torch.Tensor | None = None
        # A served model's encoder as a frozen TorchScript graph (`prepare_for_serving`).
        self._graph: torch.jit.ScriptModule | None = None

    @property
    def cfg(self) -> SASRecConfig:
        """The config with its concrete type."""
        return self.config  # type: ignore[return-value]

    def build(
        self,
        n_items: int,
        item_attributes: np.ndarray | None,
        item_text: np.ndarray | None = None,
    ) -> SASRecNet:
        """Create the network for a catalog (also used to restore a saved model).

        item_text [n_items + 1, hidden]: title vectors (`augrec.text.reduce`), used when
        `text` is not "off".
        """
        self.n_items = n_items
        self.item_attributes = item_attributes if self.cfg.use_attributes else None
        item_text = item_text if self.cfg.text != "off" else None
        self._frozen_table = self._graph = None
        torch.manual_seed(self.seed)
        self.net = SASRecNet(n_items, self.cfg, self.item_attributes, item_text)
        self.net = self.net.to(self.cfg.device)
        return self.net

    def fit(
        self, split: Split, validate: Validator | None = None, reporter: Reporter | None = None
    ) -> dict[str, Any]:
        """Train in-process with the plain torch loop, selecting the epoch on validation.

        Synthetic positions of the split (`Split.train_synthetic`) are weighted by
        `synthetic_weight`; `finetune` runs the two-stage recipe (`training/recipes.py`).
        """
        from augrec.training.loop import train_sequences
        from augrec.training.recipes import fit_two_stage, synthetic_target_weights

        item_text, text_info = self._item_text(split)
        net = self.build(split.n_items, split.item_attributes, item_text)
        run_validation = (lambda: validate(self)) if validate is not None else None
        weights = synthetic_target_weights(split, self.cfg.synthetic_weight)
        if self.cfg.finetune:
            pre, fine = fit_two_stage(
                net, split, self.cfg, self.seed, run_validation, reporter, weights
            )
            self.fit_info = {
                **fine.summary(),
                # what a refit repeats: both stages' epoch counts
                "best_epoch": pre.best_epoch,
                "finetune_best_epoch": fine.best_epoch,
                "pretrain": pre.summary(),
                "finetune": fine.summary(),
            }
            self.fit_history = [{**h, "stage": "pretrain"} for h in pre.history] + [
                {**h, "stage": "finetune"} for h in fine.history
            ]
        else:
            result = train_sequences(
                net,
                split.train,
                self.cfg,
                seed=self.seed,
                validate=run_validation,
                reporter=reporter,
                target_weights=weights,
            )
            self.fit_info = result.summary()
            self.fit_history = result.history
        if text_info is not None:
            self.fit_info["text"] = text_info
        return self.fit_info

    def _item_text(self, split: Split) -> tuple[np.ndarray | None, dict[str, Any] | None]:
        """Title vectors for the catalog, or (None, None) when text is off or there are none."""
        if self.cfg.text == "off":
            return None, None
        titles = split.item_titles
        if titles is None or not any(t.strip() for t in titles):
            log.info(
                "text: %s asked for, but the catalog has no titles: trained without", self.cfg.text
            )
            return None, {"mode": self.cfg.text, "used": False, "reason": "no item titles"}
        from augrec.text.reduce import item_text_vectors

        vectors, titled = item_text_vectors(titles, self.cfg.hidden)
        return vectors, {"mode": self.cfg.text, "used": True, "items_with_title": int(titled.sum())}

    @torch.no_grad()
    def score(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """Scores of every item after each history's last position [B, N]."""
        return self.device_scores(histories).cpu()

    @torch.no_grad()
    def device_scores(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """`score` on the network's device."""
        assert self.net is not None, "fit or load the model first"
        was_training = self.net.training
        if was_training:  # a loaded model is already in eval mode: skip the module walk
            self.net.eval()
        table = self._table()
        h = self._last_hidden(histories, table)  # [B, D]
        scores = (h @ table.T).float()
        if was_training:
            self.net.train()
        return scores

    def _last_hidden(self, histories: Sequence[np.ndarray], table: torch.Tensor) -> torch.Tensor:
        """Hidden state after each history's last item, [B, D].

        A batch is padded to its longest history, so one long history would make every short
        one cost as much: histories run in groups of similar length (`length_groups`).
        """
        assert self.net is not None
        device, max_len = self.cfg.device, self.cfg.max_len
        net = self.net
        encode = self._graph or (lambda seq, table: last_hidden(net, seq, table))
        groups = length_groups([min(len(h), max_len) for h in histories])
        if len(groups) == 1:
            return encode(pad_left(histories, max_len).to(device), table)
        out = torch.empty(len(histories), table.shape[1], dtype=table.dtype, device=device)
        for rows in groups:
            seq = pad_left([histories[r] for r in rows], max_len).to(device)
            out[torch.from_numpy(rows).to(device)] = encode(seq, table)
        return out

    def prepare_for_serving(self) -> bool:
        """Run the encoder as a frozen TorchScript graph: ~2x less time per call on the CPU.

        A served request is one short forward pass, so Python and operator dispatch are a
        large share of it; the frozen graph drops the Python and fuses operators (scores
        within 1e-5 of eager: fused kernels round differently). Only for a loaded model, on
        the CPU; anything the tracer cannot handle keeps the eager encoder.
        """
        if self.net is None or self._frozen_table is None or self.cfg.device != "cpu":
            return False
        example = pad_left([np.arange(1, 4)], self.cfg.max_len)
        try:
            with torch.no_grad(), warnings.catch_warnings():
                # The tracer warns that shapes become constants: they do not (the sequence
                # length flows through aten::size); test_sasrec_inference checks other ones.
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                # torch 2.13 marks torch.jit deprecated in favour of torch.compile, which needs
                # a C++ toolchain in the serving image (docs/decisions.md); if torch.jit goes,
                # the except below keeps the eager encoder.
                warnings.simplefilter("ignore", DeprecationWarning)
                traced = torch.jit.trace(
                    _LastHidden(self.net).eval(), (example, self._frozen_table), check_trace=False
                )
                graph = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
                for n in (1, 2, 3):  # TorchScript specialises on its first calls: not a request's
                    graph(pad_left([np.arange(1, 3 * n)] * n, self.cfg.max_len), self._frozen_table)
        except Exception as exc:  # a model the tracer cannot take still serves, eagerly
            log.warning("SASRec serves with its eager encoder (TorchScript failed: %s)", exc)
            return False
        self._graph = graph
        return True

    @torch.no_grad()
    def item_similarity(self, items: np.ndarray) -> torch.Tensor:
        """Cosine similarity of the items' embeddings (id plus attributes) to every item."""
        assert self.net is not None, "fit or load the model first"
        table = F.normalize(self._table().float(), dim=1)  # [N, D]
        idx = torch.as_tensor(np.asarray(items, dtype=np.int64), device=table.device)
        sims = (table[idx] @ table.T).cpu()  # [len(items), N]
        sims[:, 0] = -torch.inf  # padding is no item
        return sims

    def state_dict(self) -> dict[str, Any]:
        """Network weights (the attribute table travels inside as a buffer)."""
        assert self.net is not None
        return {
            "net": {k: v.cpu() for k, v in self.net.state_dict().items()},
            "n_items": self.n_items,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Rebuild the network for the saved catalog and load its weights."""
        attrs = state["net"].get("item_attrs")
        text = state["net"].get("item_text")  # fused title vectors travel as a buffer
        self.build(
            int(state["n_items"]),
            None if attrs is None else attrs.numpy(),
            None if text is None else text.numpy(),
        )
        assert self.net is not None
        self.net.load_state_dict(state["net"])
        # A loaded model is for inference: `score` then never toggles train/eval, which
        # concurrent serving threads would race on (the training loop calls `train()` itself).
        self.net.eval()
        with torch.no_grad():
            self._frozen_table = self.net.item_table().detach()

    def _table(self) -> torch.Tensor:
        """Every item's embedding: cached once loaded, live while training."""
        assert self.net is not None
        return self._frozen_table if self._frozen_table is not None else self.net.item_table()
