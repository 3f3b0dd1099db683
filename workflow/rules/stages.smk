# One rule per stage of the table in src/seenn/pipeline/table.py (each stage is declared beside its code).
# Directive values are read now, except shell/message, which Snakemake formats at run time:
# they use {rule}, never the loop variable.
for _st in STAGES:

    rule:
        name:
            _st.name
        message:
            stage_message(_st)
        input:
            **stage_inputs(_st),
        output:
            **stage_outputs(_st),
        log:
            _st.log_file,
        threads: stage_threads(_st)
        resources:
            **_st.resources,
        shell:
            stage_shell(_st)
