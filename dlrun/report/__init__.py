"""What a run leaves behind: run-directory files, TensorBoard events, the terminal display."""
