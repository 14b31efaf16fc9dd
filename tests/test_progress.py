import io

from sureid._progress import Progress


def test_items_pass_through_and_a_log_gets_one_final_line():
    out = io.StringIO()  # not a terminal: lines, no carriage returns
    bar = Progress(range(5), desc="epoch 1", stream=out)
    bar.set_postfix("loss 1.0")
    assert list(bar) == [0, 1, 2, 3, 4]
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epoch 1 5/5 [")
    assert lines[0].endswith("loss 1.0") and "\r" not in out.getvalue()


def test_disabled_prints_nothing_and_unsized_iterables_count_up():
    out = io.StringIO()
    assert list(Progress(iter("ab"), stream=out, enabled=False)) == ["a", "b"]
    assert out.getvalue() == ""
    list(Progress(iter("abc"), desc="gen", stream=out, min_interval=0.0))
    assert out.getvalue().splitlines()[-1].startswith("gen 3 [")

