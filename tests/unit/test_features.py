"""The emulator's datapath choice by name."""
import pytest

from testbed.emulator import features


def test_open_vswitch_datapath_names_are_accepted_and_bad_ones_refused():
    """'netdev' is the userspace datapath; an unknown name is refused naming the valid ones."""
    assert features.choose_datapath("netdev") == "user"
    assert features.choose_datapath("user") == "user"
    with pytest.raises(ValueError, match=r"auto, kernel \(system\) or user \(netdev\)"):
        features.choose_datapath("dpdk")
