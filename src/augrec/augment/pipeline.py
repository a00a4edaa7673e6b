"""`augrec augment`: build a synthetic set with one method and describe it.

Methods (the ablation the platform always reports):
- `none`: an empty set (the baseline every other method is compared with);
- `heuristic`: CoSeRec operators applied to short users' real histories;
- `mle`: the reverse generator, pre-trained by maximum likelihood only;
- `gan`: the same generator, then adversarially refined; the checkpoint is chosen by the
  selector recommender's *validation* NDCG@10 when trained on real + synthetic.

The generator trains on the training split of "member" users only; a seeded share of users
(`holdout_share`) is kept out of generator training so the privacy report has real users
the generator never saw. Generation never emits an item the user has in the real log
(training, validation or test): held-out items cannot enter training data through synthesis.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from augrec.augment.adversarial import AdversarialConfig, refine
from augrec.augment.generator import ReverseGenerator, TextConditioning
from augrec.augment.generator_fit import DPConfig, StoppingConfig, fit_generator, user_roles
from augrec.augment.heuristic import heuristic_sequences, nearest_neighbour
from augrec.augment.synthetic_set import SyntheticSet, augmented_split
from augrec.data.splits import Split, member_mask
from augrec.errors import ConfigError
from augrec.evaluation.evaluate import rank_users
from augrec.evaluation.metrics import ndcg, tail_items
from augrec.models import build_model
from augrec.models.itemknn import cooccurrence_similarity
from augrec.models.sasrec import SASRecConfig
from augrec.training.progress import ConsoleReporter, StepProgress

log = logging.getLogger(__name__)
METHODS = ("none", "heuristic", "mle", "gan")


class SelectorConfig(BaseModel):
    """The recommender that judges generator checkpoints on validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "sasrec"
    params: dict[str, Any] = Field(default_factory=lambda: {"epochs": 8, "eval_every": 4})


class AugmentConfig(BaseModel):
    """What to generate, for whom, and how much.

    The defaults are the least harmful configuration measured on Amazon Beauty (docs/benchmarks.md,
    "Lighter variant", benchmarks/configs/augmentation-beauty-light.yaml): one item per short
    user, no virtual users, synthetic share capped at 10%. Writing more (3 items per short user,
    virtual users, a 25% share) lowered NDCG@10 for every method.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["none", "heuristic", "mle", "gan"] = "gan"
    max_history: int = Field(5, ge=1, description="extend users with at most this many items")
    prepend: int = Field(1, ge=1, description="items written before each extended history")
    temperature: float = Field(1.0, gt=0, description="sampling temperature")
    virtual_users: int = Field(0, ge=0, description="virtual users seeded on tail items")
    virtual_length: int = Field(5, ge=2)
    heuristic_copies: int = Field(1, ge=1, description="heuristic: copies per short user")
    max_synthetic_share: float = Field(
        0.1, gt=0, lt=1, description="cap: synthetic share of all training interactions"
    )
    holdout_share: float = Field(0.1, ge=0, lt=1, description="users kept from the generator")
    generator: dict[str, Any] = Field(
        default_factory=lambda: {"epochs": 20, "dropout": 0.3},
        description="SASRecConfig values of the reverse generator",
    )
    adversarial: AdversarialConfig = AdversarialConfig(steps=100, select_every=50)
    selector: SelectorConfig = SelectorConfig()
    # Generator training (docs/augmentation.md, "A generator that passes its privacy gate").
    # The defaults keep the fixed-epoch, non-private, id-only generator.
    generator_stopping: StoppingConfig = StoppingConfig()
    generator_dp: DPConfig | None = Field(
        None, description="DP-SGD for the generator's maximum likelihood (method mle only)"
    )
    generator_text: TextConditioning = TextConditioning()


def _real_items_per_user(split: Split) -> list[np.ndarray]:
    """Every item each user has in the real log (train + validation + test targets)."""
    items = [s.copy() for s in split.train]
    for es in (split.valid, split.test):
        for u, t in zip(es.users, es.targets, strict=True):
            items[u] = np.append(items[u], t)
    return items


def write_with_generator(
    gen: ReverseGenerator, split: Split, cfg: AugmentConfig, method: str, seed: int
) -> SyntheticSet:
    """Prefixes for short users and tail-seeded virtual users, within the share cap."""
    rng = np.random.default_rng(seed)
    torch_gen = torch.Generator().manual_seed(seed)
    lengths = np.array([len(s) for s in split.train])
    users = np.flatnonzero((lengths >= 1) & (lengths <= cfg.max_history))
    real = _real_items_per_user(split)
    prefixes = gen.sample_prefixes(
        [split.train[u] for u in users],
        [cfg.prepend] * len(users),
        cfg.temperature,
        banned=[real[u] for u in users],
        generator=torch_gen,
    )
    synth = SyntheticSet(method=method, prefixes=dict(zip(users.tolist(), prefixes, strict=True)))
    if cfg.virtual_users:
        tail = np.flatnonzero(tail_items(split.item_counts) & (split.item_counts > 0))
        seeds = rng.choice(tail, size=cfg.virtual_users, replace=True)
        synth.extra = gen.sample_virtual(seeds, cfg.virtual_length, cfg.temperature, torch_gen)
        synth.extra_kind = "virtual"
    synth.cap(split, cfg.max_synthetic_share, rng)
    return synth


def validation_score(
    split: Split, synth: SyntheticSet, selector: SelectorConfig, seed: int, label: str = ""
) -> float:
    """Selector recommender trained on real + synthetic, scored on validation NDCG@10."""
    model = build_model(selector.model, selector.params, seed=seed)
    reporter = None
    if hasattr(model.config, "epochs"):
        reporter = ConsoleReporter(model.config.epochs, prefix=f"{label}selector ")
    model.fit(augmented_split(split, synth), reporter=reporter)
    return ndcg(rank_users(model, split.valid).ranks, 10)


def generator_text_for(items: Any, split: Split, cfg: AugmentConfig) -> np.ndarray | None:
    """Text features per encoded item for the generator, or None (text off, or no titles).

    `items` is the dataset's items table (`Dataset.items`); titles are embedded by the
    packaged encoder (offline, cached by content) and whitened (`generator.text_features`).
    """
    if not cfg.generator_text.enabled or cfg.method not in ("mle", "gan"):
        return None
    from augrec.augment.generator import encoded_titles, item_text_features

    titles = encoded_titles(items, split.item_ids)
    if titles is None:
        log.info("generator: no item titles in this catalog; the generator is id-only")
        return None
    return item_text_features(titles, cfg.generator_text.components)


def _check_generator_options(cfg: AugmentConfig, ray: tuple[Any, Any, Any] | None) -> None:
    """Combinations that would silently not do what they say fail here, naming the field."""
    if cfg.generator_dp is not None and cfg.method == "gan":
        raise ConfigError(
            "augment.generator_dp: the adversarial phase trains on member histories without "
            "differential privacy, so a 'gan' generator would not have the epsilon reported; "
            "use method 'mle' with generator_dp"
        )
    special = cfg.generator_dp is not None or cfg.generator_stopping.valid_share > 0
    if special and ray is not None and ray[2].num_workers > 0:
        raise ConfigError(
            f"augment.generator_dp / generator_stopping.valid_share: run in-process; "
            f"Ray Train workers (num_workers={ray[2].num_workers}) train fixed epochs without DP"
        )


def augment(
    split: Split,
    cfg: AugmentConfig,
    seed: int = 0,
    ray: tuple[Any, Any, Any] | None = None,
    item_text: np.ndarray | None = None,
) -> tuple[SyntheticSet, dict[str, Any]]:
    """Build the synthetic set for `cfg.method`; returns it with a record of how it was made.

    The record carries the generator (under "generator") for the privacy report's
    membership-inference scores, the member and holdout masks, timings and the selection
    trace. `ray` = (data path, SplitConfig, RayConfig) runs maximum-likelihood pre-training
    on Ray Train workers; the adversarial phase always runs here (it alternates two small
    models on small batches, where data parallelism buys little). `item_text` are text
    features per encoded item ([n_items + 1, K], `generator.item_text_features`), used when
    `cfg.generator_text.enabled`; without them the generator is id-only, as before.
    """
    t0 = time.perf_counter()
    _check_generator_options(cfg, ray)
    members = member_mask(len(split.train), cfg.holdout_share, seed)
    # Stopping users come out of the members; the privacy holdout (~members) is untouched.
    trained, stopping = user_roles(members, cfg.generator_stopping.valid_share, seed)
    info: dict[str, Any] = {
        "members": trained,
        "holdout": ~members,
        "generator": None,
        "selection": [],
    }
    if cfg.method == "none":
        synth = SyntheticSet(method="none")
    elif cfg.method == "heuristic":
        lengths = np.array([len(s) for s in split.train])
        users = np.flatnonzero((lengths >= 2) & (lengths <= cfg.max_history))
        sim = cooccurrence_similarity(split.train, split.n_items, neighbors=20, shrink=10.0)
        extra = heuristic_sequences(
            split.train, users, cfg.heuristic_copies, nearest_neighbour(sim), seed
        )
        synth = SyntheticSet(method="heuristic", extra=extra, extra_kind="heuristic")
        synth.cap(split, cfg.max_synthetic_share, np.random.default_rng(seed))
    else:
        gen_cfg = SASRecConfig(**{"use_attributes": False, **cfg.generator})
        text = item_text if cfg.generator_text.enabled else None
        if cfg.generator_text.enabled and item_text is None:
            log.info("generator: text conditioning asked for, but the catalog has no titles")
        if text is not None and ray is not None and ray[2].num_workers > 0:
            raise ConfigError("augment.generator_text: runs in-process, not on Ray Train workers")
        gen = ReverseGenerator(split.n_items, gen_cfg, seed=seed, item_text=text)
        member_train = [s for s, m in zip(split.train, trained, strict=True) if m]
        log.info(
            "generator: maximum likelihood on %d member histories, %d epochs",
            len(member_train),
            gen_cfg.epochs,
        )
        if cfg.generator_dp is not None or stopping.any():
            info["mle"] = fit_generator(
                gen,
                member_train,
                [s for s, m in zip(split.train, stopping, strict=True) if m],
                patience=cfg.generator_stopping.patience,
                dp=cfg.generator_dp,
                reporter=ConsoleReporter(gen_cfg.epochs, prefix="generator (MLE) "),
            )
        elif ray is not None and ray[2].num_workers > 0:
            from augrec.augment.generator import fit_with_ray

            info["mle"] = fit_with_ray(gen, ray[0], ray[1], ray[2], cfg.holdout_share)
        else:
            mle_progress = ConsoleReporter(gen_cfg.epochs, prefix="generator (MLE) ")
            info["mle"] = gen.fit_mle(member_train, reporter=mle_progress).summary()
        if cfg.method == "mle":
            synth = write_with_generator(gen, split, cfg, "mle", seed)
        else:
            steps = StepProgress(cfg.adversarial.steps, "adversarial step")
            checkpoints, history = refine(
                gen, member_train, split.item_counts, cfg.adversarial, seed, steps.update
            )
            info["adversarial"] = history
            best: tuple[float, int, SyntheticSet] | None = None
            chosen = StepProgress(len(checkpoints), "checkpoint selection", every_s=0.0)
            for i, (step, state) in enumerate(checkpoints, start=1):
                gen.load_state_dict(state)
                candidate = write_with_generator(gen, split, cfg, "gan", seed)
                label = f"checkpoint {i}/{len(checkpoints)} (step {step}): "
                score = validation_score(split, candidate, cfg.selector, seed, label)
                info["selection"].append({"step": step, "valid_ndcg@10": score})
                chosen.update(i, f"step {step} selector valid ndcg@10 {score:.4f}")
                if best is None or score > best[0]:
                    best = (score, step, candidate)
            assert best is not None
            _, step, synth = best
            gen.load_state_dict(dict(checkpoints)[step])
            info["selected_step"] = step
        info["generator"] = gen
    info["seconds"] = time.perf_counter() - t0
    synth.meta.update(
        {
            "protocol": split.protocol,
            "seed": seed,
            "config": cfg.model_dump(),
            "seconds": round(info["seconds"], 3),
            **({"selected_step": info["selected_step"]} if "selected_step" in info else {}),
        }
    )
    return synth, info
