/* neuralcl faces train / train-verifier (tools/cmd-faces-train.c). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gint ncl_cli_faces_train (gint argc, gchar ** argv);
gint ncl_cli_faces_train_verifier (gint argc, gchar ** argv);

G_END_DECLS
