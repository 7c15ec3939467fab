"""The data-sharing exchange (数据共享交换平台)."""
