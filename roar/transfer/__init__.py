"""`roar get` and `roar put`: moving data across roar's boundary, recorded as jobs.

get.py and put.py do the work and build the job records (record.py); the
schemes live in http.py and s3.py (file:// is a local copy); placing files
safely (temporary name in the destination directory, rename into place,
nothing partial left on failure) is in files.py. Errors are ContextError
(exit 7) or UsageError (exit 2), one line saying what to do (docs/get-put.md).
"""
