import ptyfast
from ptyfast import _kernels


def test_core_imports():
    assert ptyfast.__version__
    assert issubclass(ptyfast.PtyfastError, ValueError)
    assert _kernels.num_threads() >= 1
