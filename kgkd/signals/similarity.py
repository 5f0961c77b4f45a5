"""How alike two domains are, read off the knowledge graph: the ``s_G(d, d')`` of the graph prior.

Three views, each a ``[D, D]`` matrix over the graph's domains. The first two are
similarities row-normalised to ``[0, 1]`` over the *other* domains (so one scalar β means
the same on every graph):

* ``relations`` — personalised PageRank from ``d`` over the domain–domain relations the
  graph states (``similarTo`` with its weight; ``sameSource``, ``sharesGenre``,
  ``subDomainOf`` and equal ``genre`` literals with :data:`RELATION_WEIGHT`), averaged
  with the proximity of the numeric attributes both domains state (e.g. a rotation angle);
* ``text`` — cosine similarity of the domains' label + description embeddings;
* ``attribute_distance`` — a *distance*, not row-normalised: the mean absolute difference
  of the standardised numeric attributes both domains state (``kgkd:rotationAngle``,
  ``kgkd:avgLength``, ...). Row normalisation would erase what makes it useful — that
  15° is half as far as 30° on every graph — so the graph prior uses it as
  ``exp(-β_a · distance)``, a kernel on the attribute scale.

Only *informative* attributes count: one that every domain states with the same value
(``channels 1`` on all rotated-MNIST domains) says nothing and would only dilute the rest.

A domain that first appears in a new Turtle file gets its rows from its description
and links alone: nothing here is fitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.features import TextEmbedder
from kgkd.signals.graph_view import SignalGraph, signal_graph_from_kg

#: Edge weight of an unweighted domain–domain relation (``similarTo`` carries its own).
RELATION_WEIGHT = 0.5
#: Restart probability of the personalised PageRank.
RESTART = 0.25


#: Similarity of a domain to itself after row normalisation: above its nearest neighbour (1), so a
#: domain's own teacher, where it has one, is trusted most.
SELF_SIMILARITY = 1.5


def _row_minmax(m: Tensor) -> Tensor:
    """Scale each row to [0, 1] over its off-diagonal entries; the diagonal becomes :data:`SELF_SIMILARITY`."""
    out = torch.zeros_like(m)
    n = m.size(0)
    for i in range(n):
        others = torch.cat([m[i, :i], m[i, i + 1 :]])
        if others.numel() == 0:
            continue
        lo, hi = others.min(), others.max()
        out[i] = (m[i] - lo) / (hi - lo) if float(hi - lo) > 1e-9 else torch.zeros_like(m[i])
    out = out.clamp(0.0, 1.0)
    out.fill_diagonal_(SELF_SIMILARITY)
    return out


def personalised_pagerank(adjacency: Tensor, restart: float = RESTART) -> Tensor:
    """Row ``i``: stationary visit distribution of a walk that restarts at node ``i``."""
    n = adjacency.size(0)
    deg = adjacency.sum(1, keepdim=True)
    trans = torch.where(deg > 0, adjacency / deg.clamp_min(1e-12), torch.eye(n))
    return restart * torch.linalg.inv(torch.eye(n) - (1 - restart) * trans.double()).float()


def _relation_adjacency(graph: SignalGraph, genres: dict[str, str]) -> Tensor:
    names = graph.names("domain")
    adj = torch.zeros(len(names), len(names))
    for (src, rel, dst), ei in graph.edge_index.items():
        if src != "domain" or dst != "domain":
            continue
        w = graph.edge_weight.get((src, rel, dst))
        for k, (a, b) in enumerate(ei.t().tolist()):
            weight = float(w[k]) if (w is not None and "similar" in rel.lower()) else RELATION_WEIGHT
            adj[a, b] = adj[b, a] = max(float(adj[a, b]), weight)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j and genres.get(a) and genres.get(a) == genres.get(b):
                adj[i, j] = max(float(adj[i, j]), RELATION_WEIGHT)
    return adj


def _attribute_distances(records: Sequence[Any]) -> tuple[Tensor, Tensor] | None:
    """Summed ``|Δz|`` and counts over the informative numeric attributes both domains state; None if none.

    An attribute is informative when at least two domains state it with different values;
    each is standardised over the domains that state it.
    """
    names = sorted({k for r in records for k in r.attributes})
    n = len(records)
    dist, count = torch.zeros(n, n), torch.zeros(n, n)
    for key in names:
        vals = torch.tensor([float(r.attributes.get(key, float("nan"))) for r in records])
        have = ~torch.isnan(vals)
        if int(have.sum()) < 2 or float(vals[have].std()) < 1e-8:
            continue  # stated by one domain, or the same everywhere: no information
        z = (vals - vals[have].mean()) / vals[have].std()
        both = have.view(-1, 1) & have.view(1, -1)
        dist += torch.where(both, (z.view(-1, 1) - z.view(1, -1)).abs(), torch.zeros(n, n))
        count += both.float()
    if not bool((count > 0).any()):
        return None
    return dist, count


def _attribute_proximity(records: Sequence[Any]) -> Tensor | None:
    """``exp(-mean |Δz|)`` over the informative attributes both domains state (0 where they share none)."""
    found = _attribute_distances(records)
    if found is None:
        return None
    dist, count = found
    return torch.where(count > 0, torch.exp(-dist / count.clamp_min(1)), torch.zeros_like(dist))


def attribute_distance(records: Sequence[Any]) -> Tensor:
    """``[D, D]`` mean ``|Δz|`` over shared informative attributes; a pair sharing none gets its row's mean.

    The imputation keeps a domain with no stated attributes neutral (neither near nor far)
    instead of looking identical to everything. All zeros when the graph states none.
    """
    n = len(records)
    found = _attribute_distances(records)
    if found is None:
        return torch.zeros(n, n)
    dist, count = found
    known = count > 0
    mean = torch.where(known, dist / count.clamp_min(1), torch.zeros_like(dist))
    off = known & ~torch.eye(n, dtype=torch.bool)
    row_mean = (mean * off).sum(1) / off.sum(1).clamp_min(1)
    out = torch.where(known, mean, row_mean.view(-1, 1).expand(n, n))
    return out.fill_diagonal_(0.0)


@dataclass
class DomainSimilarity:
    """Row-normalised similarity views over the graph's domains (see module docstring)."""

    domains: list[str]
    relations: Tensor  # [D, D]
    text: Tensor  # [D, D]
    attribute_distance: Tensor | None = None  # [D, D]; None → zeros (the graph states no attributes)

    def __post_init__(self) -> None:
        if self.attribute_distance is None:
            self.attribute_distance = torch.zeros(len(self.domains), len(self.domains))

    @classmethod
    def from_kg(cls, kg: Any, embedder: TextEmbedder | None = None, use_text: bool = True) -> DomainSimilarity:
        """Compute the views of ``kg`` (a ``KnowledgeGraph`` or :class:`SignalGraph`)."""
        graph = kg if isinstance(kg, SignalGraph) else signal_graph_from_kg(kg)
        names = graph.names("domain")
        if not names:
            raise SignalError("the graph has no kgkd:Domain nodes; the graph prior needs domains to compare")
        genres: dict[str, str] = {}
        if hasattr(kg, "domains") and not isinstance(kg, SignalGraph):
            genres = {d.name: d.text_attributes.get("genre", "") for d in kg.domains()}
        ppr = _row_minmax(personalised_pagerank(_relation_adjacency(graph, genres)))
        records = graph.records["domain"]
        attrs = _attribute_proximity(records)
        relations = ppr if attrs is None else (ppr + _row_minmax(attrs)) / 2
        if use_text:
            emb = (embedder or TextEmbedder()).embed([r.text for r in graph.records["domain"]])
            text = _row_minmax(emb @ emb.t())
        else:
            text = torch.zeros(len(names), len(names))
        return cls(list(names), relations, text, attribute_distance(records))

    def row(self, view: str, domain: str, others: Sequence[str]) -> Tensor:
        """``view``'s entry of ``domain`` against each of ``others`` (0 for names not in the graph)."""
        if domain not in self.domains:
            raise SignalError(
                f"domain '{domain}' is not a kgkd:Domain node of the graph (known: {', '.join(self.domains)}); "
                "add it to the Turtle file with a description and its relations"
            )
        mat = getattr(self, view)
        i = self.domains.index(domain)
        pos = {n: k for k, n in enumerate(self.domains)}
        return torch.tensor([float(mat[i, pos[o]]) if o in pos else 0.0 for o in others])
