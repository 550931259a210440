"""``kybern image build``: Dockerfiles to OCI images in the host's image store.

:mod:`.dockerfile` parses (pure), :mod:`.expand` substitutes variables and splits words as
Docker's shell lexer does, :mod:`.ignore` applies ``.dockerignore``, :mod:`.context` plans
COPY/ADD layers, :mod:`.layerdiff` turns a RUN container's overlay upper directory into a layer,
:mod:`.run` executes RUN with runc/crun, :mod:`.cache` keys layers, and :mod:`.builder` drives
the steps and writes the image.
"""
