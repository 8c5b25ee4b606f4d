import platform

from budgetlm.train.memory import tune_allocator


def test_tune_allocator_applies_on_glibc_and_is_idempotent():
    libc, _ = platform.libc_ver()
    first, second = tune_allocator(), tune_allocator()
    assert first == second
    assert first is (libc == "glibc")
