"""Pipeline steps travel to workers as pickles (executors serialize them); what a step loads at run
time (models, indexes, open files) must stay out, so that each worker loads its own, once."""

from __future__ import annotations

import copy


class LoadedInWorker:
    """Mixin for a datatrove step: the attributes named in `loaded_in_worker` (name -> its value before
    loading) go into pickles and deep copies as that unloaded value."""

    loaded_in_worker: dict = {}

    def __getstate__(self):
        return self.__dict__ | {name: copy.copy(unloaded) for name, unloaded in self.loaded_in_worker.items()}
