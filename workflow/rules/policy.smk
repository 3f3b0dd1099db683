# Rules of the 'policy' stages, one per entry of src/seenn/stages.py with family 'policy'.
# Directive values are read now, except shell/message, which Snakemake formats at run time:
# they use {rule}, never the loop variable.
for _st in stages_in_family("policy"):

    rule:
        name:
            _st.name
        message:
            "stage {rule} (see src/seenn/stages.py; log in {log})"
        input:
            **stage_inputs(_st),
        output:
            **_st.outputs,
        log:
            _st.log_file,
        threads: stage_threads(_st)
        shell:
            "seenn run {rule}"
