/* `haven record MINT_ID [--duration SECONDS] [--out DIR] [haven options]`: records one stream
 * to files without the HTTP server, showing progress on one line, until Ctrl-C, the duration or
 * the end of the stream. */
#ifndef HV_CLI_RECORD_H
#define HV_CLI_RECORD_H

/* argv[0] is "haven", argv[1] is "record". Returns the process exit status. */
int hv_cli_record(int argc, char **argv);

#endif
