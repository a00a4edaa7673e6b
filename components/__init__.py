"""kfp v2 components: each is a thin adapter that calls one function of `augrec.steps`.

Every component runs in the one project image (`AUGREC_IMAGE`, see `image.py`), which has
augrec and kfp installed: nothing is pip-installed at task start. Under `kfp.local` the same
functions run as subprocesses of this Python environment.
"""
