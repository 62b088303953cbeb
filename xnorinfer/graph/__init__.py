"""Graph IR, operator set, optimisation passes and executor."""

from .executor import Executor
from .ir import Graph, GraphBuilder, GraphError, Node, TensorInfo
from .opset import OPS, infer_shapes
from .passes import optimize

__all__ = ["Executor", "Graph", "GraphBuilder", "GraphError", "Node", "OPS", "TensorInfo", "infer_shapes", "optimize"]
