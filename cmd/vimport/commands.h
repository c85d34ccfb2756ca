/* vimport subcommands: each takes argv with argv[0] = the command name and returns the
 * process exit code. */
#ifndef VIMPORT_CMD_COMMANDS_H
#define VIMPORT_CMD_COMMANDS_H

#define VIMPORT_VERSION "0.1.0"

int cmd_sum(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_sniff(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_verify_checksum_file(int argc, char **argv);
/* argv[0] is the program name: CDI runs it as /usr/bin/cdi-image-size-detection. */
int cmd_size_detection(int argc, char **argv);
/* CDI copies /usr/bin/cdi-containerimage-server into a node pull's shared volume. */
int cmd_containerimage_server(int argc, char **argv);
/* CDI's DataImportCron runs /usr/bin/cdi-source-update-poller in a CronJob. */
int cmd_source_update_poller(int argc, char **argv);

#endif
