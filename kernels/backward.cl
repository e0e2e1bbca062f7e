/* backward.cl: backward passes (being written). */
