"""VideoPanel: pick or upload a clip; sampled frames, caption segments and a text query's score curve over time;
a slider that scrubs to a frame and shows its caption and attention."""
from __future__ import annotations

import ipywidgets as w

from mmkit.errors import InputError

from .base import (IPYWIDGETS_MAJOR, ModelChoice, Panel, control_layout, esc, over_limit, png, preview_png,
                   upload_error, wrap_row)
from .picker import uploaded_files

MAX_UPLOAD_MB = 200  # MB of 10**6 bytes; uploads stay in memory; longer videos are better read from a path in code


class VideoPanel(Panel):
    """Caption a clip into timed segments and find a text in it, frame by frame; scrub through the frames.

    Args:
        caption_model: a captioning model (Loaded or name, default "blip-caption").
        search_model: an image-text model for the query (Loaded or name, default "clip").
        clips: the example clips offered (default: 5 ShapesWorld clips, `ShapesClips(5, seed=0)`).
        every: seconds between sampled frames.
        max_frames: at most this many frames are sampled (they are kept, small, for the strip and slider).
        background: run in a thread (False for tests).
    """

    def __init__(self, caption_model="blip-caption", search_model="clip", clips=None, every: float = 0.5,
                 max_frames: int = 120, background: bool = True):
        from mmkit.data import ShapesClips

        self.clips = list(clips if clips is not None else ShapesClips(5, seed=0))
        self.max_frames = max_frames
        self.caption_model = ModelChoice(caption_model, "captioner")
        self.search_model = ModelChoice(search_model, "matcher")
        self.source = w.Dropdown(options=[(f"ShapesWorld clip {i}", i) for i in range(len(self.clips))],
                                 value=0 if self.clips else None, description="clip", layout=control_layout("320px"))
        self.upload = w.FileUpload(accept="video/*,.mp4,.webm,.mkv,.mov,.avi", multiple=False, description="Upload")
        self.uploaded: tuple[str, bytes] | None = None  # (name, content) of the last upload
        self.every = w.BoundedFloatText(value=every, min=0.05, max=60, step=0.25, description="every (s)",
                                        layout=w.Layout(width="180px"))
        self.query = w.Text(value="a red circle", description="find", layout=control_layout("320px"))
        self.button = w.Button(description="Analyse", button_style="primary", icon="film")
        self.strip = w.Image(format="png")  # the sampled frames side by side
        self.timeline = w.Image(format="png")  # caption segments and the query's score curve
        self.slider = w.IntSlider(value=0, min=0, max=0, description="frame", continuous_update=False,
                                  layout=control_layout("480px"))
        self.show_attention = w.Checkbox(value=False, description="attention", indent=False)
        self.frame_view = w.Image(format="png")
        self.frame_text = w.HTML("")  # time and caption of the scrubbed frame
        self.attention = w.Image(format="png")  # the caption's per-word maps on the scrubbed frame
        self.result: dict | None = None  # frames, captions (VideoCaptions), search (VideoSearch), clip (or None)
        self.button.on_click(lambda _: self.analyse())
        self.slider.observe(lambda _: self.scrub(), names="value")
        self.show_attention.observe(lambda _: self.scrub(), names="value")
        self.source.observe(lambda _: self._use_example(), names="value")
        if IPYWIDGETS_MAJOR >= 8:
            self.upload.observe(lambda ch: self._on_upload(ch["new"]), names="value")
        else:  # 7.7 bumps _counter on each upload
            self.upload.observe(lambda _: self._on_upload(self.upload.value), names="_counter")
        self.picked = w.HTML(self._label())
        super().__init__([self.caption_model.box, self.search_model.box,
                          wrap_row([self.source, self.upload, self.picked]),
                          wrap_row([self.every, self.query, self.button]), self.strip, self.timeline,
                          wrap_row([self.slider, self.show_attention]), wrap_row([self.frame_view, self.frame_text]),
                          self.attention], background)
        self._busy_buttons = [self.button]

    # -- the clip ----------------------------------------------------------------------------------------------
    def _label(self) -> str:
        what = f"upload: {self.uploaded[0]}" if self.uploaded else f"example clip {self.source.value}"
        return f"<span style='color:#555'>using {esc(what)}</span>"

    def _use_example(self) -> None:
        self.uploaded = None
        self.picked.value = self._label()

    def _on_upload(self, value) -> None:
        files = uploaded_files(value)
        if not files:
            return
        name, content, size = files[0]
        if IPYWIDGETS_MAJOR >= 8:
            self.upload.value = ()  # forget it, so the same file again is seen as a change
        if not content:
            self.show_error(f"{name!r} is empty (0 bytes); choose another file")
            return
        shown = over_limit(max(size, len(content)), MAX_UPLOAD_MB)
        if shown:
            self.show_error(f"{name!r} is {shown}; the limit is {MAX_UPLOAD_MB} MB. "
                            "Cut or re-encode the video smaller, or pass its path to mmkit.caption_video in code.")
            return
        self.clear_error()
        self.uploaded = (name, content)
        self.picked.value = self._label()

    def on_error(self, e: BaseException) -> None:
        """Errors about the uploaded bytes name the uploaded file."""
        self.show_error(upload_error(e, self.uploaded[1], self.uploaded[0]) if self.uploaded else e)

    def _video(self):
        """What the tasks read: the uploaded bytes or the chosen example clip."""
        if self.uploaded is not None:
            return self.uploaded[1], None
        if not self.clips:
            raise InputError("no clip chosen: upload a video (MP4, WebM, ...) or give the panel example clips")
        clip = self.clips[self.source.value]
        return clip, clip

    # -- the work ----------------------------------------------------------------------------------------------
    def analyse(self) -> None:
        """Sample frames, caption them into segments and score them against the query (the Analyse button)."""
        import mmkit
        from mmkit.data import video_frames
        from mmkit.video.tasks import frame_source

        def work(job):
            video, clip = self._video()
            query = self.query.value.strip()
            if not query:
                raise InputError("the query is empty; type what to find, e.g. 'a red circle'")
            every = float(self.every.value)
            frames_in = frame_source(video, every, self.max_frames, 256)[0] if clip is not None else \
                video_frames(video, every=every, max_frames=self.max_frames, max_side=256)
            frames = []
            for f in frames_in:  # kept small (256 px) for the strip and the slider
                frames.append(f)
                job.progress(len(frames), self.max_frames, f"decoding... {f.time:.1f} s")
            if not frames:
                raise InputError("no frames were sampled; use a smaller 'every'")
            cm = self.caption_model.get("caption")
            sm = self.search_model.get("match")
            n = len(frames)
            caps = mmkit.caption_video(cm, frames, progress=lambda k, t: job.progress(k, 2 * n, f"captioning... {t:.1f} s"))
            hits = mmkit.search_video(sm, frames, query,
                                      progress=lambda k, t: job.progress(n + k, 2 * n, f"searching... {t:.1f} s"))
            return {"frames": frames, "captions": caps, "search": hits, "clip": clip}

        def done(result):
            self.result = result
            self._draw()

        self.run(work, done, "decoding...")

    def _draw(self) -> None:
        from mmkit.video import frame_strip

        r = self.result
        self.strip.value = png(frame_strip(r["frames"], cols=min(16, len(r["frames"])), side=48))
        self.timeline.value = png(self._timeline_figure())
        self.slider.max = len(r["frames"]) - 1
        if self.slider.value:
            self.slider.value = 0  # scrub() runs through the observer
        else:
            self.scrub()

    def _timeline_figure(self):
        from matplotlib.figure import Figure  # not pyplot: nothing to close, no window

        from mmkit.video import plot_search, plot_segments

        r = self.result
        fig = Figure(figsize=(8, 3.6))
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.3])
        plot_segments(r["captions"], ax=top)
        truth = None
        if r["clip"] is not None:  # a synthetic clip knows when the queried object is visible
            truth = [(i.start, i.end) for i in r["clip"].timeline if f"a {i.name}" == r["search"].text.lower()]
        plot_search(r["search"], ax=bottom, truth=truth)
        fig.tight_layout()
        return fig

    def scrub(self) -> None:
        """Show the frame under the slider: picture, time, caption (and attention when ticked)."""
        if not self.result:
            return
        f = self.result["frames"][self.slider.value]
        cap = self.result["captions"].captions[self.slider.value]
        score = float(self.result["search"].scores[self.slider.value])
        self.frame_view.value = preview_png(f.image, 192)
        self.frame_text.value = (f"<div><b>{f.time:.2f} s</b> (frame {f.index})</div>"
                                 f"<div style='font-size:1.2em'>{esc(cap)}</div>"
                                 f"<div style='color:#555'>score for '{esc(self.result['search'].text)}': "
                                 f"{score:.3f}</div>")
        self.attention.value = b""
        if self.show_attention.value:
            self._attention(f.image)

    def _attention(self, image) -> None:
        import mmkit

        def work(job):
            m = self.caption_model.get("attention_maps", attention=True)
            job.check()
            return mmkit.viz.caption_strip(mmkit.attention_maps(m, image))

        def done(fig):
            self.attention.value = png(fig)

        self.run(work, done, "attention...")
