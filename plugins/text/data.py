"""Text data sources: the embedded grammar corpus, the user's own files, a hub dataset.

All three share :class:`TextData`: sentences per split -> a SentencePiece tokenizer trained on
the training split -> token ids with eos appended. A batch is ``tokens (B, T)`` padded with the
pad id, ``mask (B, T)`` and ``times (T,) = arange(T) * dt``: the latent ODE runs over token
positions. The same class turns sentences into batches for ``interpolate-sentences`` and
decodes latent points greedily for ``odepipe sample``.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict, List, Literal, Optional, Sequence

import torch

import odepipe
from odepipe import Batch, DataSource

from .tokenizer import EOS_ID, PAD_ID, Tokenizer, cache_root, train_tokenizer, warn

SPLITS = ("train", "valid", "test")


class TextData(DataSource):
    """Shared body: tokenization, batching, greedy decoding, interpolation and sampling.

    Args:
        vocab: SentencePiece vocabulary size (capped, with a warning, when the training
            split cannot support it).
        tokenizer: SentencePiece model type, ``bpe`` or ``unigram``.
        max_tokens: longest sentence in pieces, eos included; longer training sentences are
            skipped with a warning, longer user input is refused.
        dt: time between two token positions on the latent ODE's clock.
        lowercase: lowercase every sentence (and user input) before tokenizing.
    """

    splits = SPLITS

    def __init__(self, seed: int = 0, vocab: int = 1200,
                 tokenizer: Literal["bpe", "unigram"] = "bpe", max_tokens: int = 32,
                 dt: float = 0.1, lowercase: bool = False):
        problems = []
        if max_tokens < 2:
            problems.append(f"data.max_tokens must be >= 2, got {max_tokens}")
        if dt <= 0:
            problems.append(f"data.dt must be > 0, got {dt}")
        if tokenizer not in ("bpe", "unigram"):
            problems.append(f"data.tokenizer={tokenizer!r} is not one of bpe, unigram")
        if problems:
            raise odepipe.DataError("; ".join(problems))
        self.seed, self.max_tokens, self.dt = seed, max_tokens, dt
        texts = {split: [" ".join(s.split()) for s in sents if s and s.strip()]
                 for split, sents in self.load_splits().items()}
        for split in SPLITS:
            if not texts.get(split):
                raise odepipe.DataError(f"the {split} split of data.type={self.kind} has no "
                                        f"sentences; give it some (see docs/text.md)")
        self.texts = texts
        self.tokenizer: Tokenizer = train_tokenizer(texts["train"], vocab, tokenizer,
                                                    lowercase)
        self.ids: Dict[str, List[List[int]]] = {}
        self.sentences: Dict[str, List[str]] = {}
        for split in SPLITS:
            encoded = self.tokenizer.encode(texts[split])
            keep = [i for i, ids in enumerate(encoded) if 0 < len(ids) < max_tokens]
            if len(keep) < len(encoded) and self.tokenizer.fresh:  # said once, not per load
                warn(f"{len(encoded) - len(keep)} of {len(encoded)} {split} sentences are empty "
                     f"or longer than data.max_tokens={max_tokens} pieces and were skipped")
            if not keep:
                raise odepipe.DataError(f"no {split} sentence fits data.max_tokens={max_tokens}; "
                                        f"raise data.max_tokens")
            self.ids[split] = [encoded[i] + [EOS_ID] for i in keep]
            self.sentences[split] = [texts[split][i] for i in keep]

    kind = "text"

    def load_splits(self) -> Dict[str, List[str]]:
        """Sentences of every split in SPLITS; subclasses read them from somewhere."""
        raise NotImplementedError

    # -- the DataSource contract -----------------------------------------------------------------
    def dims(self) -> Dict[str, int]:
        return {"vocab_size": self.tokenizer.vocab_size}

    def dataset(self, split: str) -> Sequence[List[int]]:
        if split not in self.ids:
            raise odepipe.DataError(f"data.type={self.kind} has no split {split!r}; splits: "
                                    f"{', '.join(SPLITS)}")
        return self.ids[split]

    def state(self) -> Dict[str, Any]:
        """Written to summary.json: which tokenizer (a hash of the training text) the run was
        trained with, so a reloaded run can tell that its text changed since (``load_run``
        compares them)."""
        return {"tokenizer": os.path.basename(self.tokenizer.path),
                "vocab_size": self.tokenizer.vocab_size}

    def times(self, length: int) -> torch.Tensor:
        return torch.arange(length, dtype=torch.float32) * self.dt  # (T,)

    def collate(self, items: Sequence[List[int]]) -> Batch:
        T = max(len(ids) for ids in items)
        tokens = torch.full((len(items), T), PAD_ID, dtype=torch.long)
        mask = torch.zeros(len(items), T)
        for i, ids in enumerate(items):
            tokens[i, :len(ids)] = torch.tensor(ids)
            mask[i, :len(ids)] = 1.0
        return Batch(times=self.times(T), tokens=tokens, mask=mask)  # (B, T), (B, T)

    @torch.no_grad()
    def evaluate(self, model: Any, batch: Batch) -> Dict[str, float]:
        """Reconstruction NLL per sentence at the posterior mean (summed over the batch)."""
        out = model(batch, sample=False)
        nll = -model.log_likelihood(out.dist, batch)  # (B,)
        return {"nll_per_sentence": float(nll.sum())}

    # -- using a trained model -------------------------------------------------------------------
    def encode_sentences(self, sentences: Sequence[str]) -> Batch:
        """A batch of user sentences; empty, whitespace-only and overlong input is refused."""
        items = []
        for s in sentences:
            if not isinstance(s, str) or not s.strip():
                raise odepipe.DataError("a sentence is empty or only whitespace; give some words")
            if len(s) > 20 * self.max_tokens:
                raise odepipe.DataError(f"a sentence of {len(s)} characters is too long for "
                                        f"this model (at most {self.max_tokens - 1} pieces)")
            ids = self.tokenizer.encode([s])[0]
            if len(ids) >= self.max_tokens:
                raise odepipe.DataError(
                    f"the sentence {_short(s)!r} is {len(ids)} pieces long; this model takes at "
                    f"most {self.max_tokens - 1} (data.max_tokens={self.max_tokens})")
            items.append(ids + [EOS_ID])
        return self.collate(items)

    @torch.no_grad()
    def decode_latents(self, model: Any, z0: torch.Tensor, max_len: Optional[int] = None
                       ) -> List[str]:
        """Greedy sentences from initial latent states ``z0 (N, L)``: evolve z over the token
        positions, then decode one token at a time."""
        max_len = max_len or self.max_tokens
        zt = model.evolve(z0, self.times(max_len).to(z0.device))  # (N, T, L)
        ids = model.decoder.greedy(zt)  # (N, T)
        return [self.tokenizer.decode(row.tolist()) for row in ids]

    @torch.no_grad()
    def interpolate(self, model: Any, a: str, b: str, steps: int = 8,
                    method: str = "linear") -> List[Dict[str, Any]]:
        """``steps`` points strictly between the posterior means of ``a`` and ``b``, plus the two
        endpoints; each decoded greedily. Returns dicts with alpha and sentence."""
        batch = self.encode_sentences([a, b])
        device = next(model.parameters()).device
        means = model.encode(batch.to(device)).mean  # (2, L)
        alphas = [i / (steps + 1) for i in range(steps + 2)]
        z0 = torch.stack([walk(means[0], means[1], t, method) for t in alphas])  # (S, L)
        sentences = self.decode_latents(model, z0)
        return [{"alpha": round(t, 4), "sentence": s} for t, s in zip(alphas, sentences)]

    @torch.no_grad()
    def sample(self, model: Any, n: int, out_dir: Optional[str] = None) -> List[str]:
        """Greedy sentences from ``n`` draws of z0 ~ N(0, I) (seeded by the data seed)."""
        device = next(model.parameters()).device
        g = torch.Generator().manual_seed(self.seed)
        z0 = torch.randn(n, model.latent_dim, generator=g).to(device)
        lines = self.decode_latents(model, z0)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "samples.txt"), "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
        return lines


def walk(a: torch.Tensor, b: torch.Tensor, t: float, method: str = "linear") -> torch.Tensor:
    """The point at fraction ``t`` from ``a`` to ``b``: straight line or slerp (great circle,
    norms interpolated linearly), which keeps intermediate points at typical prior radii."""
    if method == "linear":
        return (1 - t) * a + t * b
    if method != "slerp":
        raise odepipe.DataError(f"unknown interpolation method {method!r}; use linear or slerp")
    na, nb = a.norm(), b.norm()
    if na < 1e-8 or nb < 1e-8:
        return (1 - t) * a + t * b
    cos = torch.clamp((a / na) @ (b / nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    direction = (torch.sin((1 - t) * omega) * a / na + torch.sin(t * omega) * b / nb) / torch.sin(omega)
    return direction * ((1 - t) * na + t * nb)


def _short(s: str, n: int = 40) -> str:
    return s if len(s) <= n else s[:n] + "..."


def _split_by_ratio(sentences: List[str], valid_ratio: float, test_ratio: float, seed: int,
                    where: str) -> Dict[str, List[str]]:
    if not (0 < valid_ratio < 1 and 0 < test_ratio < 1 and valid_ratio + test_ratio < 1):
        raise odepipe.DataError(f"data.valid_ratio and data.test_ratio must be in (0, 1) with a "
                                f"sum below 1 (got {valid_ratio}, {test_ratio})")
    if len(sentences) < 3:
        raise odepipe.DataError(f"{where} has {len(sentences)} non-empty lines; at least 3 are "
                                f"needed to split it into train, valid and test")
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    n_valid = max(1, int(round(valid_ratio * len(order))))
    n_test = max(1, int(round(test_ratio * len(order))))
    pick = lambda idx: [sentences[i] for i in idx]  # noqa: E731
    return {"valid": pick(order[:n_valid]), "test": pick(order[n_valid:n_valid + n_test]),
            "train": pick(order[n_valid + n_test:])}


class GrammarText(TextData):
    """The embedded corpus: sentences of odepipe's own probabilistic English grammar."""

    kind = "grammar"

    def __init__(self, seed: int = 0, n_train: int = 20000, n_valid: int = 500,
                 n_test: int = 1000, max_words: int = 20, vocab: int = 1200,
                 tokenizer: Literal["bpe", "unigram"] = "bpe", max_tokens: int = 32,
                 dt: float = 0.1, lowercase: bool = True):
        if min(n_train, n_valid, n_test) < 1 or max_words < 3:
            raise odepipe.DataError("data.n_train, data.n_valid and data.n_test must be >= 1 "
                                    "and data.max_words >= 3")
        self.n = {"train": n_train, "valid": n_valid, "test": n_test}
        self.max_words = max_words
        super().__init__(seed, vocab, tokenizer, max_tokens, dt, lowercase)

    def load_splits(self) -> Dict[str, List[str]]:
        """Train first; valid and test hold only sentences not in train (held out)."""
        from .grammar import default_grammar

        grammar = default_grammar()
        rng = random.Random(self.seed)
        train = [grammar.generate(rng, self.max_words) for _ in range(self.n["train"])]
        seen = set(train)
        out = {"train": train}
        for split in ("valid", "test"):
            chosen: List[str] = []
            for _ in range(50 * self.n[split]):
                s = grammar.generate(rng, self.max_words)
                if s not in seen:
                    seen.add(s)
                    chosen.append(s)
                    if len(chosen) == self.n[split]:
                        break
            out[split] = chosen
        return out

    def grammatical(self, sentence: str) -> bool:
        from .grammar import accepts

        return accepts(sentence)


class TextFiles(TextData):
    """Your own text, one sentence per line, read with the datasets library's "text" builder.

    Give ``path`` (split by ``valid_ratio`` / ``test_ratio``) or ``train_path`` with
    ``valid_path`` and ``test_path``.
    """

    kind = "text"

    def __init__(self, seed: int = 0, path: Optional[str] = None,
                 train_path: Optional[str] = None, valid_path: Optional[str] = None,
                 test_path: Optional[str] = None, valid_ratio: float = 0.05,
                 test_ratio: float = 0.05, vocab: int = 4000,
                 tokenizer: Literal["bpe", "unigram"] = "bpe", max_tokens: int = 48,
                 dt: float = 0.1, lowercase: bool = False):
        self.files = {"path": path, "train_path": train_path, "valid_path": valid_path,
                      "test_path": test_path}
        self.ratios = (valid_ratio, test_ratio)
        super().__init__(seed, vocab, tokenizer, max_tokens, dt, lowercase)

    def load_splits(self) -> Dict[str, List[str]]:
        f = self.files
        if f["path"] and f["train_path"]:
            raise odepipe.DataError("give data.path or data.train_path, not both")
        if not f["path"] and not f["train_path"]:
            raise odepipe.DataError("data.type=text needs a file: data.path=FILE.txt (split by "
                                    "data.valid_ratio/test_ratio) or data.train_path=... with "
                                    "data.valid_path=... data.test_path=...")
        keys = ["path"] if f["path"] else [k for k in ("train_path", "valid_path", "test_path")
                                           if f[k]]
        for key in keys:
            if not os.path.isfile(f[key]):
                raise odepipe.DataError(f"data.{key}={f[key]!r}: no such file")
        files = {k: os.path.abspath(f[k]) for k in keys}
        lines = _load_text_files(files)
        if f["path"]:
            return _split_by_ratio(lines["path"], *self.ratios, self.seed, f["path"])
        out = {"train": lines["train_path"]}
        rest = _split_by_ratio(out["train"], *self.ratios, self.seed, f["train_path"]) \
            if not (f["valid_path"] and f["test_path"]) else None
        for split in ("valid", "test"):
            key = f"{split}_path"
            if f[key]:
                out[split] = lines[key]
            else:  # a missing held-out file is carved out of the training file
                out[split] = rest[split]
                out["train"] = rest["train"]
        return out


def _load_text_files(files: Dict[str, str]) -> Dict[str, List[str]]:
    """Lines of each file through datasets' "text" builder (Arrow cache under odepipe's)."""
    try:
        import datasets
    except ImportError:
        raise odepipe.DataError("data.type=text needs the datasets library: pip install "
                                "'odepipe[text]'") from None
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset("text", data_files=files,
                                   cache_dir=os.path.join(cache_root(), "datasets"))
    except Exception as exc:  # datasets raises many kinds; every one is a problem with a file
        raise odepipe.DataError(f"could not read {', '.join(files.values())} as text "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                                ) from None
    return {k: [t for t in ds[k]["text"] if t.strip()] for k in files}


class HubText(TextData):
    """A text dataset from the Hugging Face hub by name, config, split and column (online)."""

    kind = "hf"

    def __init__(self, seed: int = 0, name: str = "", config: Optional[str] = None,
                 split: str = "train", column: str = "text", valid_split: Optional[str] = None,
                 test_split: Optional[str] = None, valid_ratio: float = 0.05,
                 test_ratio: float = 0.05, max_sentences: Optional[int] = None,
                 vocab: int = 4000, tokenizer: Literal["bpe", "unigram"] = "bpe",
                 max_tokens: int = 48, dt: float = 0.1, lowercase: bool = False):
        if not name:
            raise odepipe.DataError("data.type=hf needs data.name (a hub dataset such as "
                                    "data.name=wikitext data.config=wikitext-2-raw-v1)")
        self.spec = dict(name=name, config=config, split=split, column=column,
                         valid_split=valid_split, test_split=test_split)
        self.ratios, self.max_sentences = (valid_ratio, test_ratio), max_sentences
        super().__init__(seed, vocab, tokenizer, max_tokens, dt, lowercase)

    def _column(self, split: str) -> List[str]:
        s = self.spec
        if not _hub_reachable():  # without a network, fail at once (cache only), no retries
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        try:
            import datasets

            datasets.disable_progress_bars()
            ds = datasets.load_dataset(s["name"], s["config"], split=split)
        except ImportError:
            raise odepipe.DataError("data.type=hf needs the datasets library: pip install "
                                    "'odepipe[text]'") from None
        except Exception as exc:  # offline, unknown name, bad config: all the user's to fix
            first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            raise odepipe.DataError(
                f"could not load hub dataset data.name={s['name']!r} config={s['config']!r} "
                f"split={split!r}: {first}. Check the name and config, and that this machine "
                f"is online (or use data=text data.path=FILE.txt for local files)") from None
        if s["column"] not in ds.column_names:
            raise odepipe.DataError(f"hub dataset {s['name']!r} has no column {s['column']!r}; "
                                    f"columns: {', '.join(ds.column_names)} (set data.column)")
        texts = [t for t in ds[s["column"]] if isinstance(t, str) and t.strip()]
        return texts[:self.max_sentences] if self.max_sentences else texts

    def load_splits(self) -> Dict[str, List[str]]:
        s = self.spec
        train = self._column(s["split"])
        if s["valid_split"] and s["test_split"]:
            return {"train": train, "valid": self._column(s["valid_split"]),
                    "test": self._column(s["test_split"])}
        return _split_by_ratio(train, *self.ratios, self.seed, f"hub dataset {s['name']}")


def _hub_reachable() -> bool:
    """Whether the hub's host name resolves; huggingface_hub would otherwise retry for a minute
    before saying it is offline. Must run before datasets is imported (it reads the env)."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.getaddrinfo(host or "huggingface.co", 443)
        return True
    except OSError:
        return False
