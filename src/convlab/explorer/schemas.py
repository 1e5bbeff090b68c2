"""The explorer's requests, validated by pydantic before any work (FastAPI answers a refusal with 422).

Bounds live here as field constraints (lengths, ranges), so a request too large is refused while it is
parsed; the engine's own rules (which padding fits which kernel, groups dividing the channels) are then
checked by :class:`convlab.spec.ConvSpec` and reported with the field they name.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Number = Annotated[float, Field(allow_inf_nan=False)]
Small = Annotated[int, Field(ge=1, le=32)]
Pad = Annotated[int, Field(ge=0, le=32)]
OutPad = Annotated[int, Field(ge=0, le=31)]
# Nested lists of numbers (the page's arrays); the sizes are checked against the playground's limits.
Row = Annotated[list[Number], Field(max_length=64)]
Grid = Annotated[list[Row], Field(max_length=64)]
Stack = Annotated[list[Grid], Field(max_length=16)]
Stack4 = Annotated[list[Stack], Field(max_length=16)]
Numbers = Row | Grid | Stack | Stack4
PerDim = Small | Annotated[list[Small], Field(min_length=1, max_length=2)]
PaddingForm = (
    Pad
    | Annotated[list[Pad], Field(min_length=1, max_length=2)]
    | Annotated[list[Annotated[list[Pad], Field(min_length=2, max_length=2)]], Field(min_length=1, max_length=2)]
    | Literal["valid", "same", "same_tf", "full", "causal"]
)


#: Requests shown in the OpenAPI schema (``/docs``) and sent by the schema's fuzzing test as they are.
CONV_EXAMPLES = [
    {"input": [[[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19], [20, 21, 22, 23, 24]]],
     "weight": [[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]], "stride": 2, "padding": 1},
    {"op": "conv_transpose", "input": [[[1, 2], [3, 4]]], "weight": [[[[1, 1, 1], [1, 1, 1], [1, 1, 1]]]], "stride": 2,
     "padding": 1, "output_padding": 1},
    {"op": "max_pool", "ndim": 1, "input": [[3, 1, 4, 1, 5, 9, 2, 6]], "kernel_size": 2, "dilation": 2},
]


class ConvRequest(BaseModel):
    """One configuration of the playground (torch's names and layouts; arrays unbatched)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": CONV_EXAMPLES})

    op: Literal["conv", "conv_transpose", "max_pool", "avg_pool"] = "conv"
    ndim: Literal[1, 2] = 2
    input: Numbers = Field(description="(C_in, *spatial): (C, L) or (C, H, W)")
    weight: Numbers | None = Field(None, description="conv: (C_out, C_in/groups, *k); transposed: "
                                                     "(C_in, C_out/groups, *k); none for pooling")
    bias: Row | None = None
    kernel_size: PerDim | None = Field(None, description="pooling's window")
    stride: PerDim | None = Field(None, description="default 1 (pooling: the window)")
    padding: PaddingForm = 0
    padding_mode: Literal["zeros", "reflect", "replicate", "circular", "symmetric"] = "zeros"
    dilation: PerDim = 1
    groups: Annotated[int, Field(ge=1, le=4)] = 1
    output_padding: OutPad | Annotated[list[OutPad], Field(min_length=1, max_length=2)] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    flip_kernel: bool = False


class ExplainRequest(ConvRequest):
    """A configuration and one output element: ``position`` = ``[channel, *index]``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {**CONV_EXAMPLES[0], "position": [0, 1, 1]}, {**CONV_EXAMPLES[2], "position": [0, 2]}]})

    position: Annotated[list[Annotated[int, Field(ge=0, le=4096)]], Field(min_length=2, max_length=3)]


class NetworkRequest(BaseModel):
    """A model (a zoo name or one given on the command line) at an input size ``(C, H, W)``."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), json_schema_extra={"examples": [
        {"model": "lenet", "input_size": [1, 28, 28]}, {"model": "resnet18", "input_size": [3, 64, 64]}]})

    model: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
    input_size: Annotated[list[Annotated[int, Field(ge=1, le=1024)]], Field(min_length=3, max_length=3)]


class ImageChoice(BaseModel):
    """The picture fed to the model: a bundled dataset image (``dataset``) or an uploaded one (``upload``)."""

    model_config = ConfigDict(extra="forbid")

    dataset: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    upload: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")] | None = None


class LayerRequest(NetworkRequest):
    """One layer of a model for one image: feature maps, kernels, receptive fields."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), json_schema_extra={"examples": [
        {"model": "lenet", "input_size": [1, 28, 28], "layer": "3", "image": {"dataset": 5}},
        {"model": "resnet18", "input_size": [3, 64, 64], "layer": "layer1.0.conv1", "erf": False}]})

    layer: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")]
    image: ImageChoice = ImageChoice(dataset=0)
    max_channels: Annotated[int, Field(ge=1, le=64)] = 16
    erf: bool = True
    feature_maps: bool = Field(True, description="false: the facts, kernels and receptive fields without the "
                                                 "forward pass (the page asks for the ERF on its own)")
