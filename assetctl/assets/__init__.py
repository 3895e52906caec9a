"""The asset layer: client, paging, retries, inputs, batch runner and journal."""
