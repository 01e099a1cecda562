"""Running a recipe: build the stages (:mod:`.build`), train them (:mod:`.train`) with their
schedules and evaluation, on one process or under torchrun (:mod:`.distributed`), into a run
folder (:mod:`.rundir`, :mod:`.checkpoint`) that :mod:`.runs` opens again for use."""
