"""Code the tests share (never a test module): the fake fal server (`fake_fal/`), launching the
app and connecting to it (`app.py`), the `edit` endpoint's arguments (`api.py`), the page's
upload areas in Chromium (`browser.py`), images and run folders made in code (`images.py`,
`outputs.py`), the tiny FLUX.2 pipeline (`tiny_flux2.py`) and a stand-in for `spaces`
(`stand_ins/`)."""
