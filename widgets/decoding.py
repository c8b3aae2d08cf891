"""DecodingControls: greedy / beam search / sampling, temperature, top-p, max tokens, seed and a prompt."""
from __future__ import annotations

import ipywidgets as w

METHODS = ("greedy", "beam", "sampling")


class DecodingControls(w.VBox):
    """The decoding options of a captioning model; `kwargs()` gives the arguments of mmkit.caption.

    Only the controls that the chosen method uses are shown (and enabled): beams for beam search;
    temperature, top-p and seed for sampling; nothing extra for greedy. Rows wrap on narrow screens.
    """

    def __init__(self, method: str = "greedy", max_new_tokens: int = 30):
        from .base import control_layout, wrap_row

        style = {"description_width": "86px"}  # "temperature" fits; the slider takes the rest of the width
        self.method = w.ToggleButtons(options=list(METHODS), value=method, description="decoding", style=style,
                                      layout=w.Layout(max_width="100%"))
        self.method.style.button_width = "88px"  # three buttons and the label fit in 390 px
        self.beams = w.IntSlider(value=3, min=2, max=8, description="beams", style=style, layout=control_layout())
        self.temperature = w.FloatSlider(value=1.0, min=0.1, max=2.0, step=0.1, description="temperature",
                                         style=style, layout=control_layout())
        self.top_p = w.FloatSlider(value=0.9, min=0.05, max=1.0, step=0.05, description="top-p", style=style,
                                   layout=control_layout())
        self.max_tokens = w.IntSlider(value=max_new_tokens, min=1, max=60, description="max tokens", style=style,
                                      layout=control_layout())
        self.seed = w.IntText(value=0, description="seed", style=style, layout=control_layout("200px"))
        self.prompt = w.Text(value="", description="prompt", placeholder="optional start, e.g. 'a photography of'",
                             style=style, layout=control_layout())
        self.method.observe(lambda _: self._enable(), names="value")
        self._enable()
        super().__init__([self.method, wrap_row([self.beams, self.temperature, self.top_p, self.seed]),
                          wrap_row([self.max_tokens, self.prompt])], layout=w.Layout(max_width="100%"))

    def _enable(self) -> None:
        """Show (and enable) only the controls of the chosen method."""
        m = self.method.value
        for c, used in ((self.beams, m == "beam"), (self.temperature, m == "sampling"),
                        (self.top_p, m == "sampling"), (self.seed, m == "sampling")):
            c.disabled = not used
            c.layout.display = None if used else "none"

    def visible(self) -> list[str]:
        """Descriptions of the method's controls that are shown now, e.g. ['beams', 'max tokens', 'prompt']."""
        return [c.description for c in (self.beams, self.temperature, self.top_p, self.seed, self.max_tokens,
                                        self.prompt) if c.layout.display != "none"]

    def kwargs(self) -> dict:
        """Keyword arguments for mmkit.caption (prompt only when one is typed); InputError on a value out of range.

        Each value is checked by mmkit.options (the rule every task function, the CLI and the panels share).
        """
        from mmkit.options import check_option

        m = self.method.value
        kw = dict(max_new_tokens=check_option("max_new_tokens", self.max_tokens.value, label="max tokens"),
                  num_beams=check_option("num_beams", self.beams.value, label="beams") if m == "beam" else 1,
                  do_sample=m == "sampling")
        if m == "sampling":
            kw.update(temperature=check_option("temperature", self.temperature.value),
                      top_p=check_option("top_p", self.top_p.value, label="top-p"),
                      seed=check_option("seed", self.seed.value))
        prompt = self.prompt.value.strip()
        if prompt:
            kw["prompt"] = prompt
        return kw

    def fit(self, m, kwargs: dict) -> dict:
        """Lower max_new_tokens, silently, to the room mmkit.caption leaves (longer captions crash BLIP; caption
        would lower them with a warning)."""
        from mmkit.tasks.inputs import fit_new_tokens

        return fit_new_tokens(m, kwargs)

    def describe(self) -> str:
        """A short plain-text description of the settings, e.g. 'beam search (3 beams), max 30 tokens'."""
        m = self.method.value
        if m == "beam":
            text = f"beam search ({self.beams.value} beams)"
        elif m == "sampling":
            text = f"sampling (T={self.temperature.value:.1f}, top-p={self.top_p.value:.2f}, seed {self.seed.value})"
        else:
            text = "greedy"
        text += f", max {self.max_tokens.value} tokens"
        if self.prompt.value.strip():
            text += f", prompt {self.prompt.value.strip()!r}"
        return text


def caption_picked(picker, decoding: DecodingControls, choice, job):
    """Caption the picker's image with the decoding controls' options: (model, image, caption).

    Shared by CaptionPanel and CaptionApp; `choice` is their ModelChoice, `job` the running job.
    """
    import mmkit

    from .base import stop_criteria

    image = picker.require_image()
    m = choice.get("caption")
    kwargs = decoding.fit(m, decoding.kwargs())
    job.check()
    return m, image, mmkit.caption(m, image, stopping_criteria=stop_criteria(job), **kwargs)
