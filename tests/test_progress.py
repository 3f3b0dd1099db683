"""Progress bars only on a terminal: a log file gets no carriage-return refreshes, only log lines."""

import io
import logging

import pytest

from seenn.common.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(stream, every=60.0):
    bar = progress(range(5), desc="train epoch 1/2", stream=stream, every=every, mininterval=0)
    items = []
    for i in bar:
        items.append(i)
        bar.set_postfix(loss=f"{1 / (i + 1):.2f}")
    return items


def test_terminal_gets_a_bar():
    stream = Terminal()
    assert _run(stream) == list(range(5))
    assert "\r" in stream.getvalue() and "train epoch 1/2" in stream.getvalue()


@pytest.mark.parametrize("every, lines", [(60.0, 0), (0.0, 5)])
def test_non_terminal_gets_no_carriage_returns_and_at_most_a_line_every_n_seconds(caplog, every, lines):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="seenn"):
        assert _run(stream, every) == list(range(5))
    assert stream.getvalue() == ""
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == lines and not any("\r" in m for m in messages)
    if lines:
        assert messages[0] == "train epoch 1/2: 1/5 (loss=1.00)" and messages[-1] == "train epoch 1/2: 5/5 (loss=0.20)"


def test_no_desc_is_silent_even_on_a_terminal(caplog):
    stream = Terminal()
    with caplog.at_level(logging.INFO, logger="seenn"):
        assert list(progress(iter(range(3)), stream=stream, every=0.0)) == [0, 1, 2]
    assert stream.getvalue() == "" and caplog.records == []
