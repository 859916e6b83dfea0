"""The README's five-line example, run against the live stack (so it cannot rot)."""

from __future__ import annotations

import contextlib
import io
import os
import re

from conftest import ROOT, Stack


def example_of(readme: str) -> str:
    text = (ROOT / readme).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"{readme} has no python example"
    return blocks[0]


def test_the_readme_example_runs(stack: Stack) -> None:
    code = example_of("README.md")
    assert code == example_of("clients/python/README.md"), "the two READMEs show the same example"
    for default in ['prefix="orchestrator"', "http://127.0.0.1:8080", "amqp://guest:guest@127.0.0.1:5672/%2F"]:
        assert default in code
    code = (
        code.replace('prefix="orchestrator"', f'prefix="{stack.prefix}"')
        .replace("http://127.0.0.1:8080", stack.api_url)
        .replace("amqp://guest:guest@127.0.0.1:5672/%2F", stack.amqp_url)
    )
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert out.getvalue().strip() == "succeeded"
