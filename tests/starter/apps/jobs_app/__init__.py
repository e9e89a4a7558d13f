"""An application with a ``@job`` (a word count, its suffix injected from the container) and a
``@listener`` reading the job's output."""
