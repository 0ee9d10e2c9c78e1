"""One description per model family: the graphs its export holds and what it can do.

Everything outside this module that needs to tell families apart asks the description —
``family(m.family).w_space`` — instead of comparing names, so a new family is one
``register_family(Family(...))`` here (or from outside, before its manifests are loaded) and
its model file on the training side.

Two graph layouts exist: ``generator`` (z [, class] -> image) and ``mapping`` + ``synthesis``
(z -> w; one w per layer -> image), the StyleGAN split that makes truncation in w, w-space
interpolation and style mixing possible.
"""

from __future__ import annotations

from dataclasses import dataclass

GENERATOR_GRAPHS = ("generator",)
W_SPACE_GRAPHS = ("mapping", "synthesis")


@dataclass(frozen=True)
class Family:
    name: str
    graphs: tuple[str, ...] = GENERATOR_GRAPHS   # the ONNX graphs an export must hold
    conditional: bool = False    # the generator takes class weights [B, K] beside z
    w_space: bool = False        # mapping -> w -> synthesis: psi in w, w lerp, style mixing
    description: str = ""

    def __post_init__(self) -> None:
        want = W_SPACE_GRAPHS if self.w_space else GENERATOR_GRAPHS
        if self.graphs != want:
            raise ValueError(f"family {self.name!r}: w_space={self.w_space} means graphs "
                             f"{want}, not {self.graphs}")
        if self.w_space and self.conditional:
            raise ValueError(f"family {self.name!r}: a conditional w-space family is not "
                             "supported yet")

    @property
    def capabilities(self) -> list[str]:
        """The service's operations this family supports, in the order the API lists them."""
        return (["sample"] + (["conditional"] if self.conditional else []) + ["interpolate"]
                + (["style-mix"] if self.w_space else []))

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


_FAMILIES: dict[str, Family] = {}


def register_family(spec: Family) -> Family:
    """Make a family known to the core (manifests, generator, service). Re-registering the
    same description is a no-op; a different one under a taken name is an error."""
    old = _FAMILIES.get(spec.name)
    if old is not None and old != spec:
        raise ValueError(f"family {spec.name!r} is already registered as {old}")
    _FAMILIES[spec.name] = spec
    return spec


def family(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: "
                         f"{', '.join(sorted(_FAMILIES))}") from None


def families() -> list[Family]:
    return [_FAMILIES[n] for n in sorted(_FAMILIES)]


def supporting(capability: str) -> list[str]:
    """Names of the families that support ``capability``."""
    return [f.name for f in families() if f.supports(capability)]


register_family(Family("dcgan", description="DCGAN: transposed convolutions, one generator"))
register_family(Family("cgan", conditional=True,
                       description="class-conditional GAN: generator(z, class weights)"))
register_family(Family("stylegan", W_SPACE_GRAPHS, w_space=True,
                       description="StyleGAN2: mapping z -> w, synthesis from one w per layer"))
